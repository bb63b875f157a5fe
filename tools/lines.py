"""What a program prints, line by line: read by a thread, kept, waited for.

Everything on the host side that runs a program (or reads a serial port) and
needs its output uses these two classes:

    Lines      lines from one or more streams, read by daemon threads; wait(),
               wait_for(text), mark() / items[start:]
    LineProc   a subprocess whose stdout (or stderr) goes into a Lines, with
               an optional "ready" line to wait for, and a stop() that ends it

A subclass of LineProc (or the `on_line` callback of Lines) parses lines into
whatever it keeps; the raw lines stay in `items` (LineProc.lines).
"""

import subprocess
import threading


class Lines:
    """Lines (str, without the line end; or byte chunks) in order of arrival."""

    def __init__(self, on_line=None, echo=None):
        self.items = []
        self._on_line = on_line  # called with each line, under the lock
        self._echo = echo  # called with each line, outside the lock
        self._cond = threading.Condition()
        self._reading = 0  # readers still reading

    def follow(self, stream):
        """Read `stream` (anything that iterates lines) in a daemon thread."""
        with self._cond:
            self._reading += 1
        t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        t.start()
        return t

    def _read(self, stream):
        try:
            for line in stream:
                self.add(line.rstrip("\r\n") if isinstance(line, str) else line)
        except (OSError, ValueError):  # the stream was closed under us
            pass
        finally:
            with self._cond:
                self._reading -= 1
                self._cond.notify_all()

    def add(self, line):
        with self._cond:
            self.items.append(line)
            if self._on_line is not None:
                self._on_line(line)
            self._cond.notify_all()
        if self._echo is not None:
            self._echo(line)

    @property
    def reading(self):
        with self._cond:
            return self._reading > 0

    def mark(self):
        with self._cond:
            return len(self.items)

    def wait(self, pred, timeout, until_end=True):
        """True once pred() holds (checked under the lock, after each line).
        With until_end, False as soon as no reader is left and pred() is false."""
        with self._cond:
            def done():
                return pred() or (until_end and self._reading == 0)

            return self._cond.wait_for(done, timeout) and pred()

    def wait_for(self, text, timeout, start=0, until_end=True):
        """The first line from index `start` that contains `text`, or None."""
        found = []

        def seen():
            for line in self.items[start:]:
                if text in line:
                    found.append(line)
                    return True
            return False

        self.wait(seen, timeout, until_end)
        return found[0] if found else None

    def text(self):
        with self._cond:
            return "\n".join(self.items)


def stop_process(proc, grace=1.0, sig=None):
    """End a subprocess (SIGTERM, or `sig`; SIGKILL after `grace` s) and close its
    pipes; its exit code."""
    if proc.poll() is None:
        try:
            if sig is None:
                proc.terminate()
            else:
                proc.send_signal(sig)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
        except OSError:
            pass
    for s in (proc.stdin, proc.stdout, proc.stderr):
        if s:
            try:
                s.close()
            except OSError:
                pass
    return proc.returncode


class LineProc:
    """A program whose output lines are collected (stdout, or stderr with
    stream="stderr"; the other one is kept for error messages). `popen`
    starts it (a LAN host's popen runs it in the host's namespace). With
    `ready`, the constructor waits for a line starting with it and raises
    `error` (RuntimeError; "NAME did not start: its stderr") when none comes."""

    def __init__(self, argv, ready=None, ready_timeout=10.0, stream="stdout", popen=None,
                 echo=None, name=None, error=RuntimeError, **popen_kw):
        kw = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
              "text": True, "bufsize": 1}
        kw.update(popen_kw)
        self.argv = argv
        self.out = Lines(self.on_line, echo)
        self.lines = self.out.items  # every line, as it came
        self.proc = (popen or subprocess.Popen)(argv, **kw)
        self._thread = self.out.follow(getattr(self.proc, stream))
        self._other = self.proc.stderr if stream == "stdout" else self.proc.stdout
        if ready is not None and not self.out.wait(
                lambda: any(line.startswith(ready) for line in self.lines), ready_timeout):
            err = self.stderr()
            self.stop()
            raise error("%s did not start: %s" % (name or " ".join(map(str, argv[:4])), err))

    def on_line(self, line):
        """Called with each line (under the lock): subclasses parse here."""

    def wait(self, pred, timeout):
        return self.out.wait(pred, timeout)

    def stderr(self):
        """What the program said on its other stream (once it has ended)."""
        if self.proc.poll() is None:
            return "(still running)"
        try:
            return self._other.read().strip() if self._other else ""
        except (OSError, ValueError):
            return ""

    def stop(self, grace=1.0, signal=None):
        """End it (SIGTERM, or `signal`; SIGKILL after `grace` s); its exit code."""
        rc = stop_process(self.proc, grace, signal)
        self._thread.join(2)
        return rc

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
