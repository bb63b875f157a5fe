"""Each folder imports only what docs/architecture.md ("What each folder may import") says."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# lib/*.py, and forward_native: lib/forward.py as deploy compiles it to machine code.
LIB_MODULES = {p.stem for p in (ROOT / "lib").glob("*.py")} | {"forward_native"}
# What MicroPython gives the device code (the rp2 port and the unix port).
MICROPYTHON = {"gc", "select", "time", "socket", "json", "os", "sys", "machine", "network",
               "micropython", "binascii", "hashlib", "struct", "io", "_thread", "rp2", "uctypes"}
STDLIB = set(sys.stdlib_module_names)


def imports(path):
    """Every module a file imports (the top-level name), wherever in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def files(folder, *, exclude=()):
    return [p for p in sorted((ROOT / folder).rglob("*.py"))
            if not any(p.is_relative_to(ROOT / e) for e in exclude)]


# (files, may import, why)
RULES = [
    (["boot.py", "main.py"], {"app"}, "the firmware's entry points start lib/app.py only"),
    (["lib"], MICROPYTHON | LIB_MODULES | {"lib"},
     "device code: MicroPython's modules and lib/ (lib.X when run as the host's package)"),
    (["tools/twin/fakes", "tools/twin/lwip", "tools/twin/board.py"],
     MICROPYTHON | {"twinctl", "twinchip", "machine"},
     "the twin's stand-ins run under MicroPython"),
    (["tools/twin/traffic.py"], STDLIB, "run by path in any namespace: the standard library"),
    (["tools"], STDLIB | {"tools", "lib", "serial", "mpremote", "rich"},
     "host tools: the standard library, lib/ (the board's own validator and protocol), "
     "tools/, pyserial, rich (the fleet view's live table; mpremote runs as a program)"),
    (["bench/mp_contenders.py", "bench/counts_scenario.py", "bench/emu_programs"],
     MICROPYTHON | LIB_MODULES, "MicroPython programs: lib/ as on the board"),
    (["bench"], STDLIB | {"tools", "bench", "matplotlib", "elftools"},
     "the benchmark: the twin's helpers (tools/), never the tests; pyelftools reads the "
     "firmware's ELF for the profile by function"),
]


@pytest.mark.parametrize("targets, allowed, why", RULES, ids=[r[0][0] for r in RULES])
def test_folder_imports_only_what_it_may(targets, allowed, why):
    done = set()
    for rule_targets, _, _ in RULES[:RULES.index((targets, allowed, why))]:
        for t in rule_targets:  # a file covered by an earlier, narrower rule
            done |= set(files(t)) if (ROOT / t).is_dir() else {ROOT / t}
    checked = []
    for t in targets:
        for p in (files(t) if (ROOT / t).is_dir() else [ROOT / t]):
            if p in done:
                continue
            bad = imports(p) - allowed
            assert not bad, "%s imports %s (%s)" % (p.relative_to(ROOT), sorted(bad), why)
            checked.append(p)
    assert checked, targets
