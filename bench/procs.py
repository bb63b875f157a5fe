"""The contenders as processes: command lines, start (wait for READY), stop (SIGTERM)."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .ns import RELAY_IP, SENDER_IP

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
MP_PROGRAM = ROOT / "bench" / "mp_contenders.py"
RCVBUF = 4 << 20  # every contender's receive queue (bench/mp_contenders.py says why)
IN_PORT = 50000
OUT_PORT = 50001


def in_groups(k: int, slot: int = 0) -> list[tuple[str, int]]:
    """Input groups of a contender: 224.0.10.1-4 (slot 0), 224.0.10.21-24 (slot 1) ..."""
    return [("224.0.10.%d" % (20 * slot + 1 + i), IN_PORT) for i in range(k)]


def out_groups(k: int, slot: int = 0) -> list[tuple[str, int]]:
    return [("224.0.10.%d" % (20 * slot + 11 + i), OUT_PORT) for i in range(k)]


def micropython_argv() -> list[str]:
    """The unix-port interpreter as an argv prefix. The PyPI build is a CPython
    wrapper script around a .so: run it with the venv's python explicitly, so
    valgrind sees a real ELF executable (its start-up cancels in the slope)."""
    named = os.environ.get("MICROPYTHON")
    if named:
        return [named]
    venv_mp = Path(sys.executable).parent / "micropython"
    if not venv_mp.exists():
        found = shutil.which("micropython")
        if not found:
            raise RuntimeError("no MicroPython unix port: run `make venv`")
        venv_mp = Path(found)
    with open(venv_mp, "rb") as f:
        head = f.read(2)
    if head == b"#!":
        return [sys.executable, str(venv_mp)]
    return [str(venv_mp)]


def micropython_version() -> str:
    """e.g. '1.29.0-preview, build 9458e3a23f on 2026-07-05'."""
    code = ("import sys; v = sys.implementation.version; "
            "print('%d.%d.%d' % v[:3] + ('-' + v[3] if len(v) > 3 and v[3] else '') "
            "+ ', build ' + sys.version.split('MicroPython ')[-1])")
    r = subprocess.run([*micropython_argv(), "-c", code], capture_output=True, text=True,
                       timeout=60)
    return r.stdout.strip() or r.stderr.strip()


class Contender:
    """One relay implementation: name, label, routes and how to start it."""

    def __init__(self, key: str, label: str, routes: int = 1, lib: str | None = None,
                 short: str | None = None):
        self.key = key
        self.label = label
        self.short = short or key  # for the plot
        self.routes = routes
        self.lib = lib  # a folder searched before lib/ (another version of the firmware)
        self.slot = 0  # group block: contenders running at once each get their own

    @property
    def inputs(self) -> list[tuple[str, int]]:
        return in_groups(self.routes, self.slot)

    @property
    def outputs(self) -> list[tuple[str, int]]:
        return out_groups(self.routes, self.slot)

    def routes_json(self) -> str:
        rs = []
        for i, ((g, p), (og, op)) in enumerate(zip(self.inputs, self.outputs, strict=True)):
            rs.append(
                {
                    "from": "%s:%d" % (g, p),
                    "to": "%s:%d" % (og, op),
                    "name": "r%d" % i,
                    "rate_pps": 100000,
                    "allow": ["198.18.0.0/15"],
                }
            )
        return json.dumps(rs)

    def routes_file(self) -> str:
        """The routes as a JSON file (the unix port's wrapper dies on an argv
        element of 256 characters or more, so the JSON cannot go on the command line)."""
        path = Path(tempfile.gettempdir()) / ("mcast-bench-%d-%s.json" % (os.getpid(), self.key))
        path.write_text(self.routes_json())
        return str(path)

    def mp_args(self, mode: str, *extra: str) -> list[str]:
        if self.key.startswith("ours"):
            return [mode, self.routes_file(), RELAY_IP, *extra]
        (g, p), (og, op) = self.inputs[0], self.outputs[0]
        return [mode, g, str(p), og, str(op), *extra]

    def argv(self, heap_n: int | None = None) -> list[str]:
        if self.key == "socat":
            (g, p), (og, op) = self.inputs[0], self.outputs[0]
            return [
                "socat",
                "-u",
                "UDP4-RECV:%d,bind=%s,reuseaddr,ip-add-membership=%s:%s,rcvbuf=%d"
                % (p, g, g, SENDER_IP, RCVBUF),
                "UDP4-SENDTO:%s:%d,ip-multicast-if=%s,ip-multicast-ttl=1" % (og, op, SENDER_IP),
            ]
        mode = "ours" if self.key.startswith("ours") else self.key
        if heap_n is not None:
            return [
                *micropython_argv(),
                "-X",
                "heapsize=256M",
                str(MP_PROGRAM),
                *self.mp_args("heap-" + mode, str(heap_n)),
            ]
        return [*micropython_argv(), str(MP_PROGRAM), *self.mp_args(mode)]


CALIBRATION = [
    Contender("bare_poll", "bare loop behind select.poll (calibration)"),
]

CONTENDERS = [
    Contender("seed", "seed loop (tutorial, 2 prints)", short="seed"),
    Contender("bare", "bare loop (recvfrom+sendto)", short="bare"),
    Contender("socat", "socat (UDP4-RECV -> UDP4-SENDTO)", short="socat"),
    Contender("ours1", "ours, 1 route", 1, short="ours\n1 route"),
    Contender("ours4", "ours, 4 routes", 4, short="ours\n4 routes"),
]


def mp_env(lib: str | None = None) -> dict[str, str]:
    """MICROPYPATH: lib/, with `lib` (or $MCAST_BENCH_LIB) first: benchmark another
    version of a firmware module, e.g. a candidate hot path, against the same contenders."""
    e = dict(os.environ)
    dirs = [str(LIB), ".frozen"]
    other = lib or os.environ.get("MCAST_BENCH_LIB")
    if other:
        dirs.insert(0, other)
    e["MICROPYPATH"] = os.pathsep.join(dirs)
    return e


class Running:
    """A started process: stdout to /dev/null (the seed's prints, the relay's stats
    lines: as on a board with no terminal), stderr read (and kept short) by a thread."""

    def __init__(self, argv: list[str], ready_text: str | None = "READY", timeout: float = 120,
                 lib: str | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=mp_env(lib),
            cwd=str(ROOT),
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.lines = 0
        self._ready = threading.Event()
        self._ready_text = ready_text
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if ready_text is None:
            self._ready.set()
        t_end = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > t_end:
                self.stop()
                raise RuntimeError(
                    "%s did not start:\n%s" % (" ".join(argv[:4]), "\n".join(self.tail))
                )

    def _reader(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines += 1
            self.tail.append(line.rstrip("\n")[:300])
            if self._ready_text is not None and line.startswith(self._ready_text):
                self._ready.set()

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._thread.join(5)
        return rc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._thread.join(5)
        return self.proc.returncode
