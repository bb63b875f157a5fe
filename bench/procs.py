"""The contenders as processes: command lines, start (wait for READY), stop (SIGTERM).
The MicroPython interpreter and its path come from the twin's helpers
(tools/twin/mpy.py); a running contender is a tools.lines.LineProc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from tools import fw
from tools.lines import LineProc
from tools.twin import mpy

from .ns import RELAY_IP, SENDER_IP

MP_PROGRAM = mpy.ROOT / "bench" / "mp_contenders.py"
RCVBUF = 4 << 20  # every contender's receive queue (bench/mp_contenders.py says why)
IN_PORT = 50000
OUT_PORT = 50001


def in_groups(k: int, slot: int = 0) -> list[tuple[str, int]]:
    """Input groups of a contender: 224.0.10.1-4 (slot 0), 224.0.10.21-24 (slot 1) ..."""
    return [("224.0.10.%d" % (20 * slot + 1 + i), IN_PORT) for i in range(k)]


def out_groups(k: int, slot: int = 0) -> list[tuple[str, int]]:
    return [("224.0.10.%d" % (20 * slot + 11 + i), OUT_PORT) for i in range(k)]


def micropython_version() -> str:
    """e.g. '1.29.0-preview, build 9458e3a23f on 2026-07-05'."""
    code = ("import sys; v = sys.implementation.version; "
            "print('%d.%d.%d' % v[:3] + ('-' + v[3] if len(v) > 3 and v[3] else '') "
            "+ ', build ' + sys.version.split('MicroPython ')[-1])")
    r = subprocess.run([*mpy.micropython_argv(), "-c", code], capture_output=True, text=True,
                       timeout=60)
    return r.stdout.strip() or r.stderr.strip()


class Contender:
    """One relay implementation: name, label, routes and how to start it."""

    def __init__(self, key: str, label: str, routes: int = 1, lib: str | None = None,
                 short: str | None = None, native: bool = False):
        self.key = key
        self.label = label
        self.short = short or key  # for the plot
        self.routes = routes
        self.lib = lib  # a folder searched before lib/ (another version of the firmware)
        # lib/forward.py as machine code too (forward_native.mpy), as deploy ships it a board
        self.native = native
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
                *mpy.micropython_argv(),
                "-X",
                "heapsize=256M",
                str(MP_PROGRAM),
                *self.mp_args("heap-" + mode, str(heap_n)),
            ]
        return [*mpy.micropython_argv(), str(MP_PROGRAM), *self.mp_args(mode)]


CALIBRATION = [
    Contender("bare_poll", "bare loop behind select.poll (calibration)"),
    Contender("ours1_bytecode", "ours, 1 route, forward loop as bytecode (calibration)", 1),
]

CONTENDERS = [
    Contender("seed", "seed loop (tutorial, 2 prints)", short="seed"),
    Contender("bare", "bare loop (recvfrom+sendto)", short="bare"),
    Contender("socat", "socat (UDP4-RECV -> UDP4-SENDTO)", short="socat"),
    Contender("ours1", "ours, 1 route", 1, short="ours\n1 route", native=True),
    Contender("ours4", "ours, 4 routes", 4, short="ours\n4 routes", native=True),
]

_native: dict[str, str | None] = {}


def native_lib() -> str | None:
    """A folder with lib/forward.py compiled to machine code for this host's MicroPython
    (forward_native.mpy, what deploy ships a board for its architecture), or None when the
    interpreter runs no native code."""
    if "dir" not in _native:
        r = subprocess.run([*mpy.micropython_argv(), "-c",
                            "import sys; print(sys.implementation._mpy)"],
                           capture_output=True, text=True, timeout=60)
        arch = fw.native_arch(int(r.stdout.split()[-1])) if r.returncode == 0 else None
        _native["dir"] = None
        if arch is not None:
            out = fw.BUILD / ("bench-native-" + arch)
            fw.compile_native(arch, out)
            _native["dir"] = str(out)
    return _native["dir"]


def mp_env(lib: str | None = None, native: bool = False) -> dict[str, str]:
    """MICROPYPATH: lib/, with `lib` (or $MCAST_BENCH_LIB) first: benchmark another
    version of a firmware module, e.g. a candidate hot path, against the same contenders;
    native: the machine-code forward loop (native_lib()) too."""
    e = dict(os.environ)
    other = lib or os.environ.get("MCAST_BENCH_LIB")
    first = [other] if other else []
    if native and native_lib():
        first.append(native_lib())
    e["MICROPYPATH"] = mpy.micropypath(*first, mpy.LIB)
    return e


class Running(LineProc):
    """A started contender: stdout to /dev/null (the seed's prints, the relay's stats
    lines: as on a board with no terminal), stderr lines (harness messages) collected."""

    def __init__(self, argv: list[str], ready_text: str | None = "READY", timeout: float = 120,
                 lib: str | None = None, native: bool = False):
        super().__init__(argv, ready=ready_text, ready_timeout=timeout, stream="stderr",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         env=mp_env(lib, native), cwd=str(mpy.ROOT), errors="replace",
                         start_new_session=True)

    @property
    def tail(self) -> list[str]:
        return [line[:300] for line in self.lines[-40:]]

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._thread.join(5)
        return rc

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        return super().stop(grace=timeout, signal=sig)
