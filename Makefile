# The README's commands. Every target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k hook -x"`.
PYTEST_ARGS ?=

.PHONY: test lint typecheck pytest demo emulator bench clean

# Create the virtual environment and install the package with its test extra
# (again only when pyproject.toml changes). uv resolves in seconds where pip takes minutes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e '.[test]'
	touch $@

test: $(VENV)/.installed lint typecheck pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# Start the bundled emulator in the foreground (Ctrl-C stops it).
emulator: $(VENV)/.installed
	$(PY) -m airflow_provider_ecoinvent.emulator

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
