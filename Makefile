# One entry point per job. Every target installs what it needs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint check deploy monitor selftest bench bench-quick soak clean

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

# With a board on USB (PORT=/dev/ttyACM0, or the one board found): compile lib/ with
# mpy-cross, copy what changed with mpremote, reboot, follow the boot log.
PORT_ARG = $(if $(PORT),--port $(PORT))
deploy: venv
	$(BIN)/python -m tools deploy $(PORT_ARG) $(ARGS)

# The board's serial REPL (mpremote repl): stats lines; Ctrl-] leaves.
monitor: venv
	$(BIN)/python -m tools monitor $(PORT_ARG) $(ARGS)

# Hardware-in-the-loop check of the board on this PC's LAN: PASS/FAIL per item.
selftest: venv
	$(BIN)/python -m tools selftest $(PORT_ARG) $(ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
