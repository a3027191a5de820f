# `make test`: create .venv if missing, install torch (CPU wheel), the package with [dev,onnx] and the reference
# implementation, then lint (ruff) and run the test suite. Re-running skips installs that are already done.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: install lint test test-all demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.py
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx]"
	# The original implementation, for parity tests: without its torchaudio requirement (see setup.py).
	$(BIN)/python -m pip install --quiet --no-deps "vocos==0.1.0" "encodec==0.1.1"
	@! $(BIN)/python -m pip show --quiet torchaudio 2>/dev/null || (echo "torchaudio is installed in $(VENV): it cannot load with the CPU torch build; uninstall it" && exit 1)
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff format --check src tests benchmarks conversion_scripts demo
	$(BIN)/ruff check src tests benchmarks conversion_scripts demo

test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest --runslow $(PYTEST_ARGS)

# `make demo`: resynthesise the bundled speech clip with hf-audio/vocos-mel-24khz when the Hub has it, else with the
# bundled demo model; writes demo_out.wav and demo_out.png and prints the distances to the input.
$(VENV)/.installed-demo: $(BIN)/python setup.py
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[cli]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m demo --output demo_out.wav

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
