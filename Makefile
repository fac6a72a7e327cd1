# Everything the project needs is installed from here, on a fresh machine.
# torch is pinned through constraints.txt so nothing pulls CUDA wheels.
# The codeformer extra (CodeFormer's non-commercial architecture) is here so the tests
# run it; a user's `pip install .` leaves it out.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: install browser test fuzz demo bench gpu-wheels lint parity clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) --editable '.[test,demo,train,codeformer]'
	touch $(STAMP)

test: install browser
	$(BIN)/python -m pytest -n auto --dist loadfile

# The batch report's test renders the page in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# The fuzz suite's long profile: thousands of random damaged files through the CLI
# (tests/test_fuzz.py; `make test` runs its fixed-seed ci profile). Failures are kept
# in .hypothesis/ for a rerun. Its tests run for minutes each: no per-test timeout.
fuzz: install
	CLIPSWAP_FUZZ_PROFILE=long $(BIN)/python -m pytest tests/test_fuzz.py -x --timeout 0

demo: install
	$(BIN)/clipswap-video demo-media demo
	mkdir -p out
	$(BIN)/clipswap-video demo/source.jpg demo/target.mp4 out/demo.mp4 --preview out/demo.png

bench: install
	$(BIN)/clipswap-video bench

# The wheels the GPU machine (Python 3.12, torch + CUDA, no network) lacks for
# `clipswap-video gpu-check`, pinned to this venv's versions, into .whl/ (git-ignored);
# tools/gpu_wheels.py lists them and why. It fails when they and the working tree
# pass 56 MiB together (the machine takes 64 MiB a call). There, in the repository
# root, with .whl carried beside the tree, the one command is
#   tools/gpu_check.sh [gpu-check options, e.g. --small]    # results in $OUT, else gpu-check-out/
gpu-wheels: install
	$(BIN)/python tools/gpu_wheels.py

lint: install
	$(PIP) --editable '.[test,demo,train,codeformer,dev]'
	$(BIN)/ruff check clipswap_video tests
	$(BIN)/ruff format --check clipswap_video tests
	$(BIN)/mypy clipswap_video
	$(BIN)/lint-imports

# Numerical parity of the h5py-only Keras interpreter against TensorFlow itself
# (developer command, not CI): a separate venv with tensorflow-cpu 2.14.1 +
# tensorflow-addons 0.23.0 builds the graphs, the project converts and compares.
# It also rewrites the small TensorFlow fixture that CI checks without TensorFlow
# (tests/data/keras_parity, tests/test_keras_parity_fixture.py).
PARITY_VENV := .venv-parity
parity: install
	test -x $(PARITY_VENV)/bin/python || $(PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_VENV)/bin/python -m pip install --quiet tensorflow-cpu==2.14.1 tensorflow-addons==0.23.0 h5py
	rm -rf parity && $(BIN)/python tools/parity_torch.py write parity
	$(PARITY_VENV)/bin/python tools/parity_keras.py parity
	$(BIN)/python tools/parity_torch.py compare parity
	$(BIN)/python tools/parity_torch.py pack parity/fixture tests/data/keras_parity

clean:
	rm -rf $(VENV) $(PARITY_VENV) demo out parity .pytest_cache
