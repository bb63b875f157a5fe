"""The board's USB serial port on the host: a pseudo-terminal that mpremote, `deploy`,
`monitor` and `selftest` open as they open /dev/ttyACM0. Whether a program has the port open
is the USB serial's DTR (a closed port drops it), read from the pty master: reading it fails
with EIO while no one has the other end open."""

import errno
import os
import select
import termios
import threading
import tty


class SerialPort:
    """``on_input(bytes)``: typed by the program on the port; ``on_open(bool)``: the port was
    opened or closed. ``write()`` sends the board's output to whoever has it open."""

    POLL_S = 0.05

    def __init__(self, on_input, on_open, link_path=None):
        self._master, slave = os.openpty()
        self.path = os.ttyname(slave)
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.close(slave)  # from now on, reading the master says whether anyone has it open
        os.set_blocking(self._master, False)
        self.link = None
        if link_path:
            self.link = str(link_path)
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass
            os.symlink(self.path, self.link)
        self.is_open = False
        self._on_input = on_input
        self._on_open = on_open
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="emu-serial")
        self._thread.start()

    @property
    def name(self):
        return self.link or self.path

    def _set_open(self, state):
        if state != self.is_open:
            self.is_open = state
            self._on_open(state)

    def _run(self):
        while not self._stop:
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                self._set_open(True)
                select.select([self._master], [], [], self.POLL_S)
                continue
            except OSError as e:
                if e.errno != errno.EIO or self._stop:
                    return
                self._set_open(False)
                threading.Event().wait(self.POLL_S)
                continue
            if data:
                self._set_open(True)
                self._on_input(data)

    def write(self, data):
        """Output of the board; dropped while nobody has the port open (there is no one to
        read it, and a pty would hand stale bytes to the next program that opens it)."""
        if not self.is_open:
            return
        with self._lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._master, view)
                except BlockingIOError:
                    select.select([], [self._master], [], 0.2)
                    continue
                except OSError:
                    return
                view = view[n:]

    def close(self):
        self._stop = True
        self._thread.join(1)
        if self.link:
            try:
                os.unlink(self.link)
            except OSError:
                pass
        os.close(self._master)
