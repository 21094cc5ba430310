"""Start-up: the PDF command group, and the heavy libraries a run uses in its second process
only, are imported only when they are used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main


def test_importing_the_cli_leaves_the_pdf_tools_alone() -> None:
    code = "import sys, pipeline.cli; print(sorted(m for m in sys.modules if 'pdf' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_main_process_of_a_run_starts_without_geopandas_scipy_or_folium() -> None:
    code = ("import sys, pipeline.cli, pipeline.stages; "
            "print(sorted(m for m in ('geopandas', 'pandas', 'scipy', 'folium') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


GRENOBLE_PDF = (Path(__file__).parents[2] / "shared" / "data" / "geopdf" / "iso32000"
                / "grenoble_horodateurs_ISO32000_L93.pdf")


def test_the_pdf_group_is_listed_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "pdf       Layers from PDF maps" in capsys.readouterr().out
    assert main(["pdf", "styles", str(GRENOBLE_PDF)]) == 0
    listing = capsys.readouterr().out
    # the meters of Grenoble, one green square style, named after the OCG layer that holds them
    assert re.search(r"page 1: 8\d\d shapes in 1 styles", listing), listing
    assert "horodateurs · fill #008000" in listing
