# One entry point per job. Every target installs what it needs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
empty :=
space := $(empty) $(empty)
# FIRMWARE=path (or several, space-separated): the official MicroPython image(s) for the
# emulated board; passed on as MCAST_RELAY_FIRMWARE (paths joined by ':').
FIRMWARE_ENV = $(if $(FIRMWARE),MCAST_RELAY_FIRMWARE=$(subst $(space),:,$(strip $(FIRMWARE))))

.PHONY: help venv emu-deps run test lint check deploy monitor selftest bench bench-quick bench-board bench-tools soak resilience clean

# `make help`: every target with its one line, the `## ` comment after its name.
help: ## every target, one line each
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## install the pinned tools into .venv/ (requirements-dev.txt)

$(STAMP): requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# Without a board: the simulated board on a private LAN, traffic flowing, live stats.
# FIRMWARE=path/to/W5100S_EVB_PICO.uf2: the same on the emulated board (the official image).
run: venv $(if $(FIRMWARE),emu-deps) ## the firmware on a simulated board + private LAN, traffic, live stats (FIRMWARE=uf2: the emulated board)
	$(BIN)/python -m tools sim $(if $(FIRMWARE),--firmware $(firstword $(FIRMWARE))) $(ARGS)

# Every test: lint, then pytest (device code under the real MicroPython unix port).
# FIRMWARE="a.uf2 b.uf2" (or MCAST_RELAY_FIRMWARE=a.uf2:b.uf2) adds the emulated board's tests
# for each image; without one they skip, saying so.
test: venv emu-deps ## every test: ruff, then pytest (FIRMWARE="a.uf2 b.uf2" adds the emulated board's)
	$(BIN)/ruff check .
	$(FIRMWARE_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv ## ruff only
	$(BIN)/ruff check .

# Long runs, kept out of `make test` (tests marked slow; docs/resilience.md has the figures).
# soak: steady traffic through the twin for SOAK_S seconds (default 600): 0 loss, flat heap.
soak: venv ## 10 min of steady traffic through the twin (SOAK_S=60 for a short one)
	$(BIN)/python -m pytest -m slow host_tests/test_soak.py -v $(PYTEST_ARGS)

# resilience: the cable pulled for 4 s, CABLE_CYCLES times in a row (default 100).
resilience: venv ## the cable pulled 100 times (CABLE_CYCLES=N)
	$(BIN)/python -m pytest -m slow host_tests/test_resilience.py -v $(PYTEST_ARGS)

# The emulated board's Node side (rp2040js, pinned by tools/emu/package-lock.json).
emu-deps: tools/emu/node_modules/.installed ## rp2040js for the emulated board (npm ci, pinned by package-lock.json)

tools/emu/node_modules/.installed: tools/emu/package.json tools/emu/package-lock.json
	cd tools/emu && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

check: venv ## validate config.json with the board's validator (ARGS="--boards boards.json")
	$(BIN)/python -m tools check $(ARGS)

# With a board on USB (PORT=/dev/ttyACM0, or the one board found): compile lib/ with
# mpy-cross, copy what changed with mpremote, reboot, follow the boot log.
PORT_ARG = $(foreach p,$(PORT),--port $(p))
deploy: venv ## put the firmware on the board(s): PORT=/dev/ttyACM0, or PORT="a b" for several
	$(BIN)/python -m tools deploy $(PORT_ARG) $(ARGS)

# The board's serial REPL (mpremote repl): stats lines; Ctrl-] leaves.
monitor: venv ## the board's serial REPL: stats lines, relay.stats() (PORT=/dev/ttyACM0)
	$(BIN)/python -m tools monitor $(PORT_ARG) $(ARGS)

# Hardware-in-the-loop check of the board on this PC's LAN: PASS/FAIL per item.
selftest: venv ## hardware-in-the-loop check, PASS/FAIL per item (PORT=..., ARGS="--iface IP")
	$(BIN)/python -m tools selftest $(PORT_ARG) $(ARGS)

# Benchmark (docs/bench.md, docs/bench.png): the seed's loop, a bare loop, socat and ours side
# by side in a private network namespace (root). Installs socat and valgrind with apt-get if
# missing, and the plot's matplotlib (bench/requirements.txt) into .venv: `make test` stays lean.
bench: venv bench-tools ## the full benchmark: seed loop, bare loop, socat, ours (docs/bench.md)
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python -m bench $(ARGS)

# Quick mode (what host_tests/test_bench.py runs): every part end to end, short runs, no
# timing claims; writes build/bench-quick/. Parts whose program is missing say SKIP and why.
bench-quick: venv ## the benchmark's short form: every part end to end, no timings claimed
	$(BIN)/python -m bench --quick $(ARGS)

# The forward path on the emulated board, in virtual time (docs/bench.md "On the emulated
# board", docs/bench-board.json): the seed loop, a bare loop and the relay side by side:
# loss-free rates at 200/1472 B, floods (forwarded/s, stats lines, REPL, recovery), flood
# threshold, profile by function. FIRMWARE=path.uf2 (several: space-separated),
# ELF=firmware.elf (the profile), SPI=20000000,31250000,62500000 (nic.baudrate; default 20 MHz),
# ARGS="--quick" (one short trial each, build/bench-board-quick/) or ARGS="--jobs 2".
bench-board: venv emu-deps ## the forward path on the emulated board in virtual time (FIRMWARE=...)
	$(FIRMWARE_ENV) $(BIN)/python -m bench.emu $(foreach e,$(ELF),--elf $(e)) $(if $(SPI),--spi $(SPI)) $(ARGS)

bench-tools: ## install socat, valgrind, iproute2 with apt-get when missing
	@missing=""; for t in socat valgrind ip unshare; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "bench: installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y socat valgrind iproute2 util-linux; \
	fi

clean: ## remove .venv/, build/ and the caches
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
