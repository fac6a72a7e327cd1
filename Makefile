# Everything the project needs is installed from here, on a fresh machine.
# torch is pinned through constraints.txt so nothing pulls CUDA wheels.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) --editable '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

demo: install
	$(BIN)/clipswap-video demo-media demo
	mkdir -p out
	$(BIN)/clipswap-video demo/source.jpg demo/target.mp4 out/demo.mp4 --preview out/demo.png

bench: install
	$(BIN)/clipswap-video bench

lint: install
	$(PIP) --editable '.[test,dev]'
	$(BIN)/ruff check clipswap_video tests
	$(BIN)/ruff format --check clipswap_video tests
	$(BIN)/mypy clipswap_video

clean:
	rm -rf $(VENV) demo out .pytest_cache
