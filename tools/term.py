"""Where the tools' output goes: a terminal or not, colour, and a reader that went away.

- is_tty(stream): a terminal that is not `dumb`.
- verdicts(text, stream): PASS/FAIL/SKIP coloured, on a terminal only and never with NO_COLOR
  set (https://no-color.org: any non-empty value).
- say(text): print a line from any thread. When stdout's reader has gone (`... | head`), the
  main thread is interrupted so the command stops quietly; cli.py then exits without a
  traceback (pipe_closed() tells it why it was interrupted).
"""

import _thread
import os
import re
import sys
import threading

_GREEN, _RED, _YELLOW, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
_VERDICT_COLOUR = {"PASS": _GREEN, "OK": _GREEN, "FAIL": _RED, "FAILED": _RED, "SKIP": _YELLOW}
_VERDICT_RE = re.compile(r"\b(PASS|FAIL|FAILED|SKIP)\b")
_lock = threading.Lock()
_pipe_closed = threading.Event()


def is_tty(stream):
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def colour_on(stream):
    """Colour for this stream: a terminal, and NO_COLOR not set."""
    return is_tty(stream) and not os.environ.get("NO_COLOR")


def verdicts(text, stream=None):
    """text with its PASS/FAIL/SKIP words coloured when `stream` (default stdout) takes colour."""
    if not colour_on(stream or sys.stdout):
        return text
    return _VERDICT_RE.sub(lambda m: _VERDICT_COLOUR[m.group(1)] + m.group(1) + _RESET, text)


def say(text, stream=None):
    """One line, flushed, whole (a lock keeps threads' lines apart)."""
    out = stream or sys.stdout
    with _lock:
        if _pipe_closed.is_set():
            return
        try:
            print(text, file=out, flush=True)
        except BrokenPipeError:
            close_stdout()
            if threading.current_thread() is not threading.main_thread():
                _thread.interrupt_main()
            else:
                raise


def close_stdout():
    """The reader of stdout has gone: send what is left to /dev/null (so the interpreter's
    last flush cannot fail either) and remember why the command stops."""
    _pipe_closed.set()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def pipe_closed():
    return _pipe_closed.is_set()
