# mesos-gpu: one command for the tests (`make test`) and one for the demo (`make demo`).
# Both create or reuse the virtual environment in .venv and install what they need, including the
# Debian packages (ZooKeeper, Docker engine) through scripts/install-system-deps.sh.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: test demo check lint typecheck imports pytest install system-deps bench soak screenshots clean

test: system-deps install check pytest

check: lint typecheck imports

# The distributed TensorFlow demo on the embedded local cluster, through the REST API.
demo: system-deps install
	$(BIN)/mesos-gpu demo

install: $(STAMP)

# Reinstall whenever the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23" "setuptools>=64" wheel
	# pymesos and the http_parser it imports ship inside mesos-gpu (third_party/pymesos/README.md): drop the
	# separate distributions that an older install put in this environment, so one copy of each is left.
	$(PIP) uninstall -y pymesos http-parser 2>/dev/null || true
	$(PIP) install -e ".[test,tf,sim]"
	@touch $@

system-deps:
	@bash scripts/install-system-deps.sh

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: system-deps install
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The long fault soak (tests/soak): >= 100 leader kills under load, ZooKeeper outages of 10-30 s, master
# restarts, task kills (~25 min). `make test` runs its short version. MESOS_GPU_SOAK_SEED repeats a run.
soak: system-deps install
	MESOS_GPU_SOAK=long $(BIN)/pytest -s -m soak tests/soak/test_soak.py

# The web page's screenshots in the README (docs/img/web-*.png), from a live local stack and Chromium.
screenshots: system-deps install
	$(BIN)/python -m tests.web.screenshots

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
