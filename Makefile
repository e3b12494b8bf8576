# The README's commands. Every target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k hook -x"`.
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Whole files go to one process, so module fixtures (the Airflow stack) are
# built once; 2 workers halve the suite's time on a 2-core machine.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

# The lowest Airflow the package declares (pyproject: apache-airflow>=3.1). Airflow 3.1.0 leaves some of
# its own dependencies unbounded and breaks with their newer releases; its constraints file pins versions
# that work, so we cap the same few: structlog (25.5 breaks its logging), fastapi (0.132 rejects the Task
# SDK's JSON bodies sent without Content-Type), universal-pathlib (0.3 breaks ObjectStoragePath) and
# cryptography (51's MultiFernet refuses the attribute Airflow 3.1.0 sets on it, so no connection with a
# password can be read once a Fernet key is set; 3.1.0's constraints pin 45).
LOWEST_AIRFLOW ?= 3.1.0
LOWEST_AIRFLOW_CAPS ?= 'structlog<25.5' 'fastapi<0.132' 'universal-pathlib<0.3' 'cryptography<46'
VENV_LOWEST    ?= .venv-lowest

.PHONY: test test-lowest test-distributed distributed-servers lint typecheck actionlint pytest fuzz dist demo docs soak emulator bench mutations clean

# Create the virtual environment and install the package with its test extra and the release tools of
# the dev extra (again only when pyproject.toml changes). uv resolves in seconds where pip takes minutes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e '.[test,dev]'
	touch $@

test: $(VENV)/.installed lint typecheck actionlint pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# The GitHub Actions workflows (.github/workflows), with the actionlint binary the dev extra installs.
actionlint: $(VENV)/.installed
	$(VENV)/bin/actionlint -no-color -oneline

# The sdist and the wheel, as a release publishes them, checked the way PyPI renders them. uv builds the
# sdist first and the wheel from the unpacked sdist, so a file missing from the sdist fails here.
dist: $(VENV)/.installed
	rm -rf dist
	$(UV) build --quiet --out-dir dist .
	$(VENV)/bin/twine check --strict dist/*

# ECOINVENT_STACK_TESTS=1: include the tests that start a real Airflow stack (plain `pytest` skips them).
# ECOINVENT_SKIP_POLICY=1: a skipped test fails the run unless tests/skip_policy.py lists it with its reason.
pytest: $(VENV)/.installed
	ECOINVENT_STACK_TESTS=1 ECOINVENT_SKIP_POLICY=1 $(PY) -m pytest $(PYTEST_PARALLEL) -m "not soak" $(PYTEST_ARGS)

# The unit and example-DAG tests again on the lowest declared versions of Airflow and of every direct
# dependency (uv's lowest-direct resolution), so that the range in pyproject.toml stays true.
$(VENV_LOWEST)/.installed: pyproject.toml $(VENV)/.installed
	test -x $(VENV_LOWEST)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV_LOWEST)
	$(UV) pip install --quiet --python $(VENV_LOWEST)/bin/python --resolution lowest-direct \
		-e '.[test,dev]' 'apache-airflow==$(LOWEST_AIRFLOW)' $(LOWEST_AIRFLOW_CAPS)
	touch $@

# The stack, reliability and benchmark suites exercise the same provider code and run once, on the newest;
# so do the emulator's tests (the emulator imports nothing of Airflow: tests/release/test_architecture.py).
# tests/release runs here too: the built wheel, installed next to Airflow 3.1.0, must work as well.
test-lowest: $(VENV_LOWEST)/.installed
	ECOINVENT_SKIP_POLICY=1 $(VENV_LOWEST)/bin/python -m pytest $(PYTEST_PARALLEL) -m "not stack" --ignore=tests/stack --ignore=tests/reliability \
		--ignore=tests/benchmarks --ignore=tests/emulator $(PYTEST_ARGS)

# The distributed suite (tests/distributed): PostgreSQL, Redis, an S3 store (moto) and Airflow with two Celery
# workers on loopback, with crashes. Its own venv, so the Celery/AWS/Postgres providers it installs never
# change what `make test` sees. The servers come from Debian packages, installed here when missing (as root).
VENV_DISTRIBUTED ?= .venv-distributed
$(VENV_DISTRIBUTED)/.installed: pyproject.toml $(VENV)/.installed
	test -x $(VENV_DISTRIBUTED)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV_DISTRIBUTED)
	$(UV) pip install --quiet --python $(VENV_DISTRIBUTED)/bin/python -e '.[test,distributed]'
	touch $@

# PostgreSQL and Redis from Debian's packages, installed when missing (as root). .ci/run starts this in the
# background while the first suites run, so the download costs no wall time.
distributed-servers:
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; \
	fi

test-distributed: $(VENV_DISTRIBUTED)/.installed distributed-servers
	@started=$$(date +%s); \
	$(VENV_DISTRIBUTED)/bin/python -m pytest tests/distributed -m distributed -p no:cacheprovider $(PYTEST_ARGS); \
	status=$$?; echo "test-distributed: $$(( $$(date +%s) - started )) s"; exit $$status

# The property suite (tests/property) with a random seed and a larger budget (about 10 minutes on 2 cores);
# `make pytest` runs it derandomized with a small one. The seed is printed first: `make fuzz FUZZ_SEED=<it>`
# replays the same examples. FUZZ_EXAMPLES sets the examples per test; failures are also kept in .hypothesis/.
ifeq ($(origin FUZZ_SEED), undefined)
FUZZ_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
FUZZ_EXAMPLES ?= 250
fuzz: $(VENV)/.installed
	@echo "make fuzz: seed $(FUZZ_SEED) (replay with: make fuzz FUZZ_SEED=$(FUZZ_SEED))"
	ECOINVENT_HYPOTHESIS_PROFILE=fuzz ECOINVENT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/property -n 0 \
		-p no:cacheprovider --hypothesis-seed=$(FUZZ_SEED) --hypothesis-show-statistics $(PYTEST_ARGS)

# The main job: the ecoinvent_ingest_datasets example DAG end to end against the bundled emulator.
demo: $(VENV)/.installed
	VENV=$(VENV) bash example_dags/demo.sh

# Refresh the docs' code samples from the tested example DAGs (the test suite checks they match).
docs: $(VENV)/.installed
	$(PY) docs/snippets.py --write

# Benchmarks against the emulator (results in benchmarks/README.md); BENCH_ARGS=--full adds N = 100,000.
BENCH_ARGS ?=
bench: $(VENV)/.installed
	$(UV) pip install --quiet --python $(PY) -e '.[test,dev,bench]'
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The full soak: continuous calls with 2-second tokens for five minutes (CI runs a 20 s variant).
soak: $(VENV)/.installed
	ECOINVENT_SOAK_SECONDS=$${ECOINVENT_SOAK_SECONDS:-300} $(PY) -m pytest tests/reliability -m soak -s -p no:cacheprovider

# Break each promise (token cache, Retry-After, cost guards, atomic output, masking, 401 renewal, lineage, ...)
# once and check the tests notice: a table of caught and surviving mutations. Minutes; run by hand, not in CI.
mutations: $(VENV)/.installed
	$(PY) tools/mutations.py $(MUTATION_ARGS)

# Start the bundled emulator in the foreground (Ctrl-C stops it).
emulator: $(VENV)/.installed
	$(PY) -m airflow_provider_ecoinvent.emulator

clean:
	rm -rf $(VENV) $(VENV_LOWEST) $(VENV_DISTRIBUTED) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
