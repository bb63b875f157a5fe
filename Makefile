# One entry point per job. Every target installs what it needs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint check deploy monitor bench bench-quick soak clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# Without a board: the simulated board on a private LAN, traffic flowing, live stats.
run: venv
	$(BIN)/python -m tools sim $(ARGS)

# Every test: lint, then pytest (device code under the real MicroPython unix port).
test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

check: venv
	$(BIN)/python -m tools check $(ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
