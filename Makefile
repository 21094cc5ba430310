# sig2osm — make targets mirror the CLI. `make demo` and `make test` set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out
PROFILE ?=
EXAMPLES := examples/grenoble/parking-meters.yml examples/bondy/parking-meters.yml \
	examples/bondy/council-map.yml examples/grenoble/parking-meters-from-pdf.yml \
	examples/bondy/addresses-on-buildings.yml examples/rennes/breton-street-names.yml
GRENOBLE_PDF := ../shared/data/geopdf/iso32000/grenoble_horodateurs_ISO32000_L93.pdf

.PHONY: setup demo test check run clean bench tools

# The virtual environment, with the project and its dev tools (dependency groups need pip ≥ 25.1).
$(BIN)/sig2osm: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@

# Bytecode of our modules, as a regular (non-editable) install would have it: each run would
# otherwise compile them again (PYTHONDONTWRITEBYTECODE is set on the build machines).
SOURCES := $(shell find pipeline conflation exports maps -name '*.py')
$(VENV)/.bytecode: $(BIN)/sig2osm $(SOURCES)
	$(BIN)/python -m compileall -q pipeline conflation exports maps >/dev/null
	touch $@

setup: $(BIN)/sig2osm $(VENV)/.bytecode

# Debian's tools the tests drive: chromium for the map tests (Playwright drives it; it never
# downloads a browser), osmium-tool and JOSM (`josm validate`, headless; it brings its Java
# runtime) to check the change files, strace for the fault-injection tests (SIGKILL and ENOSPC
# injected at system calls). Installed when missing; the tests fail, never skip, without them.
DEBIAN_TOOLS := /usr/bin/chromium=chromium /usr/bin/osmium=osmium-tool /usr/bin/josm=josm \
	/usr/bin/strace=strace
tools:
	@missing=""; for tool in $(DEBIAN_TOOLS); do \
	  [ -x "$${tool%%=*}" ] || missing="$$missing $${tool#*=}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: setup
	$(BIN)/sig2osm -q pdf extract $(GRENOBLE_PDF) --legend examples/grenoble/pdf-legend.yml \
		--out $(OUT)/pdf/grenoble-horodateurs.gpkg
	$(BIN)/python examples/rennes/make_inputs.py $(OUT)/rennes
	@for p in $(EXAMPLES); do $(BIN)/sig2osm run $$p --out $(OUT) || exit $$?; done
	@echo "Open $(OUT)/index.html or the map.html of each run folder above."

test: setup tools
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

check: setup
	$(BIN)/ruff check pipeline conflation exports maps tests bench examples
	$(BIN)/mypy

run: setup
	@test -n "$(PROFILE)" || { echo "usage: make run PROFILE=path/to/profile.yml [OUT=out]"; exit 2; }
	$(BIN)/sig2osm run $(PROFILE) --out $(OUT)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
