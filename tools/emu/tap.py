"""The board's Ethernet cable: a TAP device on the private LAN's switch (the bridge in the
LAN's switch namespace, as the board's switch port ``p-NAME``). Frames the WIZnet chip sends
are written into it, frames the switch forwards to the port are read from it."""

import ctypes
import fcntl
import os
import select
import struct
import threading
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 1514  # the chip's MACRAW frames: Ethernet header + 1500


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def open_tap(name, netns):
    """Create TAP device `name` inside network namespace `netns` (by name); returns its fd.
    Only the calling thread changes namespace, and only for the open, on a thread of its own."""
    result = {}

    def work():
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/%s" % netns, os.O_RDONLY)
        try:
            _setns(target)
            try:
                fd = os.open("/dev/net/tun", os.O_RDWR)
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
                result["fd"] = fd
            finally:
                _setns(own)
        except OSError as e:
            result["error"] = e
        finally:
            os.close(own)
            os.close(target)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["fd"]


class Tap:
    """Reads frames into ``on_frame(bytes, monotonic_ns)`` on a thread; ``write(frame)`` puts one on the wire
    (silently lost while the port is down, as on a pulled cable)."""

    def __init__(self, name, netns, on_frame):
        self.name = name
        self.fd = open_tap(name, netns)
        os.set_blocking(self.fd, False)
        self._on_frame = on_frame
        self._stop = False
        self.written = 0
        self.lost = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="emu-tap")
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                frame = os.read(self.fd, 2048)
                seen = time.monotonic_ns()
            except BlockingIOError:
                continue
            except OSError:
                return  # closed
            if frame:
                self._on_frame(frame, seen)

    def write(self, frame):
        try:
            os.write(self.fd, frame)
            self.written += 1
        except OSError:
            self.lost += 1

    def close(self):
        self._stop = True
        self._thread.join(1)
        try:
            os.close(self.fd)
        except OSError:
            pass
