"""The host end of the emulated board's process (tools/emu/js/main.mjs).

The Node process runs the RP2040, its flash and the WIZnet chip; this end owns everything on
the host: it starts the process, and exchanges messages of ``[type u8][length u32 LE]
[payload]`` with it over a Unix socket pair: Ethernet frames, USB serial bytes, control
commands (JSON) and events (JSON).
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN_JS = HERE / "js" / "main.mjs"
NODE_MODULES = HERE / "node_modules"

ETH, SERIAL, CTRL, ETH_AT, ETH_SEEN = 1, 2, 3, 4, 5
ETH_OUT, SERIAL_OUT, EVENT = 0x81, 0x82, 0x83
_HEAD = struct.Struct("<BI")
_VNS = struct.Struct("<d")


class EmulatorError(RuntimeError):
    """The emulator cannot start or stopped: the message says why and what to do."""


def node_binary():
    node = os.environ.get("NODE") or shutil.which("node")
    if not node:
        raise EmulatorError("the emulated board needs Node.js (`node` on PATH, 18 or later)")
    if not (NODE_MODULES / "rp2040js").is_dir():
        raise EmulatorError("rp2040js is not installed: run `make emu-deps` "
                            "(npm ci in tools/emu)")
    return node


class EmuProcess:
    """One emulator process. Callbacks run on the reader thread:
    ``on_frame(vns, frame)``, ``on_serial(bytes)``, ``on_event(dict)``."""

    def __init__(self, args, on_frame, on_serial, on_event, stderr=None):
        self._on_frame = on_frame
        self._on_serial = on_serial
        self._on_event = on_event
        self._sock, child = socket.socketpair()
        argv = [node_binary(), str(MAIN_JS), *args, "--fd", str(child.fileno())]
        try:
            self.proc = subprocess.Popen(argv, pass_fds=[child.fileno()],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        finally:
            child.close()
        self._send_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True, name="emu-link")
        self._reader.start()

    # -- to the board ------------------------------------------------------------------------
    def _send(self, kind, payload):
        with self._send_lock:
            if self._closed:
                return
            try:
                self._sock.sendall(_HEAD.pack(kind, len(payload)) + payload)
            except OSError:
                self._closed = True

    def frame(self, frame, seen_ns=None):
        """A frame off the wire, read at time.monotonic_ns() seen_ns (default: now): the
        board gets it at that time of its own clock, so bursts are not made by the emulator."""
        if seen_ns is None:
            seen_ns = time.monotonic_ns()
        self._send(ETH_SEEN, _VNS.pack(float(seen_ns)) + bytes(frame))

    def frame_at(self, vns, frame):
        self._send(ETH_AT, _VNS.pack(vns) + bytes(frame))

    def serial(self, data):
        self._send(SERIAL, bytes(data))

    def control(self, cmd, **kw):
        kw["cmd"] = cmd
        self._send(CTRL, json.dumps(kw).encode())

    # -- from the board ----------------------------------------------------------------------
    def _read(self):
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            off = 0
            while len(buf) - off >= 5:
                kind, n = _HEAD.unpack_from(buf, off)
                if len(buf) - off - 5 < n:
                    break
                payload = buf[off + 5:off + 5 + n]
                off += 5 + n
                if kind == ETH_OUT:
                    self._on_frame(_VNS.unpack_from(payload)[0], payload[8:])
                elif kind == SERIAL_OUT:
                    self._on_serial(payload)
                elif kind == EVENT:
                    self._on_event(json.loads(payload))
            buf = buf[off:]
        self._closed = True
        self._on_event({"event": "exit"})

    def alive(self):
        return self.proc.poll() is None

    def close(self, timeout=5):
        if self.proc.poll() is None:
            self.control("quit")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with self._send_lock:
            self._closed = True
            try:
                self._sock.close()
            except OSError:
                pass
        self._reader.join(2)
        return self.proc.returncode
