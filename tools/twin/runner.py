"""Run the unmodified firmware as a simulated board (CPython side).

A board is a folder holding what the real board's flash holds (boot.py,
main.py, lib/, config.json), run by the real MicroPython unix port inside the
board's network namespace with the fakes first on its path. A supervisor plays
the reset button: when the firmware resets (machine.reset(), the watchdog),
the interpreter is started again with the reset cause the board would report.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tools.twin import mpy

FIRMWARE_FILES = ("boot.py", "main.py")
BOARD_PY = Path(__file__).resolve().parent / "board.py"
# The RP2040 build has about 190 KB of GC heap; objects are twice as large on
# this 64-bit interpreter, so twice that keeps the twin as tight as the board.
HEAP = "384K"


def install_firmware(dest, src_root=mpy.ROOT, config=None):
    """Copy boot.py, main.py and lib/*.py into dest (the board's flash) and
    write config.json (a dict, a JSON string, or None for the checkout's)."""
    dest = Path(dest)
    (dest / "lib").mkdir(parents=True, exist_ok=True)
    src_root = Path(src_root)
    for f in FIRMWARE_FILES:
        shutil.copy2(src_root / f, dest / f)
    for f in (src_root / "lib").glob("*.py"):
        shutil.copy2(f, dest / "lib" / f.name)
    if config is None:
        shutil.copy2(src_root / "config.json", dest / "config.json")
    elif isinstance(config, str):
        (dest / "config.json").write_text(config)
    else:
        (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def twin_config(base, ip, prefix=15, **relay):
    """A copy of a config with the board's address moved into the twin's LAN
    (198.18.0.0/15) and relay options overridden (e.g. watchdog_ms=0)."""
    cfg = json.loads(json.dumps(base))
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    netmask = ".".join(str((mask >> s) & 255) for s in (24, 16, 8, 0))
    if not cfg.get("network", {}).get("dhcp"):
        cfg["network"] = {"ip": ip, "netmask": netmask, "gateway": "0.0.0.0", "dns": "0.0.0.0"}
    if relay:
        cfg.setdefault("relay", {}).update(relay)
    return cfg


_ISOLATE = None


def isolate_prefix():
    """argv prefix that runs a command in a fresh network namespace holding only
    a downed `lo`: whatever the firmware sends there reaches nothing. `unshare -n`
    as root, `unshare -rn` with user namespaces."""
    global _ISOLATE
    if _ISOLATE is None:
        for prefix in (["unshare", "-n", "--"], ["unshare", "-rn", "--"]):
            try:
                ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                continue
            if ok.returncode == 0:
                _ISOLATE = prefix
                break
        else:
            raise RuntimeError("cannot make a private network namespace (unshare -n / -rn)")
    return list(_ISOLATE)


class Board:
    """One simulated board. `host` is a tools.twin.lan host, or None for a
    board alone in a namespace of its own (no LAN: nothing it sends goes anywhere)."""

    def __init__(self, host=None, config=None, personality="lwip", workdir=None,
                 uid="e661410403000001", src_root=mpy.ROOT, extra_env=None, echo=None,
                 repl=False):
        self.host = host
        self.personality = personality
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="mcr-board-")
            workdir = self._tmp
        self.dir = Path(workdir)
        self.state = self.dir / ".twin"
        self.state.mkdir(parents=True, exist_ok=True)
        self.control_path = self.state / "control.json"
        self.control_path.write_text("{}")
        install_firmware(self.dir, src_root, config)
        self.uid = uid
        self.extra_env = dict(extra_env or {})
        self.echo = echo
        self.repl = repl  # keep the REPL after main.py (as the board does), fed by send()
        self.proc = None
        self.lines = []
        self.boots = 0
        self.resets = []
        self._lock = threading.Lock()
        self._stopping = False
        self._supervisor = None
        self._cond = threading.Condition(self._lock)

    # -- process management -------------------------------------------------
    def env(self, boot_cause="PWRON"):
        paths = [mpy.FAKES]
        if self.personality == "lwip":
            paths.append(mpy.LWIP)
        e = dict(os.environ)
        e.update(
            MICROPYPATH=mpy.micropypath(*paths),
            TWIN_CONTROL=str(self.control_path),
            TWIN_STATE=str(self.state),
            TWIN_UID=self.uid,
            TWIN_BOOT_CAUSE=boot_cause,
        )
        if self.host is not None:
            e["TWIN_IFACE"] = self.host.ifname
        e.update(self.extra_env)
        return e

    def _argv(self):
        argv = [mpy.micropython_binary(), "-X", "heapsize=" + HEAP,
                *(["-i"] if self.repl else []), str(BOARD_PY)]
        if self.host is not None:
            return self.host.cmd(argv)
        return isolate_prefix() + argv

    def start(self):
        self._stopping = False
        self._spawn("PWRON")
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _spawn(self, cause):
        reset_marker = self.state / "reset"
        if reset_marker.exists():
            reset_marker.unlink()
        self.proc = subprocess.Popen(
            self._argv(), cwd=self.dir, env=self.env(cause),
            stdin=subprocess.PIPE if self.repl else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,
        )
        self.boots += 1
        threading.Thread(target=self._reader, args=(self.proc,), daemon=True).start()

    def _reader(self, proc):
        for line in proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            if self.echo:
                self.echo(line)

    def _supervise(self):
        while not self._stopping:
            proc = self.proc
            proc.wait()
            marker = self.state / "reset"
            if self._stopping or not marker.exists():
                return
            cause = marker.read_text().strip() or "WDT"
            self.resets.append(cause)
            self._spawn(cause)

    def interrupt(self):
        """Ctrl-C, as mpremote sends it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)

    def send(self, text):
        """Type at the REPL (repl=True boards)."""
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stop(self, timeout=10):
        """Ctrl-C, then wait; kill if it does not end. Returns the exit code."""
        self._stopping = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.repl and self.proc.stdin:
                try:
                    self.proc.stdin.close()  # EOF at the REPL ends the interpreter
                except OSError:
                    pass
            self.interrupt()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        time.sleep(0.05)  # let the reader drain
        return self.proc.returncode

    def close(self):
        self.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- observing and poking ------------------------------------------------
    def output(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, text, timeout=20, start=0):
        """Wait for a line containing `text` (from line index `start`); returns it."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        "board never printed %r; output:\n%s" % (text, "\n".join(self.lines[-40:]))
                    )
                self._cond.wait(min(left, 0.2))

    def cable(self, up):
        """Pull (False) or plug back (True) the board's Ethernet cable on its LAN."""
        self.host.lan.cable(self.host, up)

    def control(self, **kw):
        """Fault injection: update the control file the fakes read."""
        cur = json.loads(self.control_path.read_text() or "{}")
        cur.update(kw)
        tmp = self.control_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cur))
        tmp.replace(self.control_path)
