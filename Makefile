# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup system-deps demo test bench soak emulator docs clean

# Set-up output goes to stderr, so that `make bench` prints nothing but its JSON on stdout.
# Two distributions, both editable: the SDK (pyproject.toml at the root) and the emulator (iotda_emulator/);
# the demos are not installed: they run from the checkout (python -m iot_device_demo.quickstart).
$(STAMP): setup.py pyproject.toml iotda_emulator/pyproject.toml iotda_emulator/requirements.txt \
          requirements/requirements.txt requirements/requirements-emulator.txt requirements/requirements-dev.txt
	@echo "creating $(VENV) and installing the SDK, the emulator and the dev tools" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(VPY) -m pip install -q --upgrade pip >&2
	@$(VPY) -m pip install -q -r requirements/requirements-dev.txt -e . -e ./iotda_emulator >&2
	@touch $(STAMP)

system-deps:
	@sh requirements/ensure_system_deps.sh >&2

setup: $(STAMP) system-deps

# Starts the emulator, registers a device and runs the smoke-detector demo against it.
demo: setup
	$(VPY) -m iot_device_demo.quickstart

test: setup
	$(VPY) -m pytest tests $(PYTEST_ARGS)

# JSON on stdout (progress on stderr); options: make bench BENCH_ARGS="--quick"
bench: setup
	@$(VPY) -m tests.bench $(BENCH_ARGS)

soak: setup
	$(VPY) -m tests.soak

emulator: setup
	$(VPY) -m iotda_emulator start

clean:
	rm -rf $(VENV) .venv-py310 .pytest_cache .hypothesis build dist *.egg-info \
	       iotda_emulator/build iotda_emulator/dist iotda_emulator/*.egg-info

# Regenerates doc/api-reference.md from the docstrings and doc/emulator.md's REST operations table from the routes.
docs: setup
	$(VPY) doc/gen_api_reference.py
	$(VPY) doc/gen_emulator_api.py
