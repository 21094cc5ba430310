"""Run every registered benchmark: `python -m bench` (or `python -m bench NAME …` for some)."""

from __future__ import annotations

import importlib
import sys

# Benchmark modules under bench/, each with a `main() -> int`. Add yours here.
BENCHMARKS: list[str] = [
    "conflation_dense",
    "messy_layers",
    "conflation_speed",
    "conflation_distributed",
    "conflator_compare",
    "conflation_real",
    "conflation_rennes",
    "conflation_hootenanny",
    "maps_render",
    "pdf_maps",
    "maps_review",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    failed = 0
    for name in names:
        print(f"== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        failed += 1 if module.main() else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
