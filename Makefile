# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup system-deps demo test bench soak emulator docs clean

$(STAMP): setup.py requirements/requirements.txt requirements/requirements-emulator.txt requirements/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	@sh requirements/ensure_system_deps.sh

setup: $(STAMP) system-deps

# Starts the emulator, registers a device and runs the smoke-detector demo against it.
demo: setup
	$(VPY) -m iot_device_demo.quickstart

test: setup
	$(VPY) -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(VPY) -m tests.bench

soak: setup
	$(VPY) -m tests.soak

emulator: setup
	$(VPY) -m iotda_emulator start

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info

# Regenerates doc/api-reference.md from the docstrings.
docs: setup
	$(VPY) doc/gen_api_reference.py
