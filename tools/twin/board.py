# The twin's "ROM" (MicroPython code): what the rp2 port's main.c does at
# start-up. Runs boot.py then main.py from the current directory (the board's
# flash) in one set of globals, with ./lib on sys.path after the fakes. Run
# with `micropython -i` to get the REPL afterwards, where `relay` is left.
# TWIN_SKIP_MAIN=1 runs boot.py only (a soft reset in the raw REPL).
import os
import sys

_here = os.getcwd()
if _here + "/lib" not in sys.path:
    sys.path.append(_here + "/lib")


def _run(_f):
    try:
        os.stat(_f)
    except OSError:
        return
    with open(_f) as _src:
        _code = _src.read()
    try:
        exec(_code, globals())
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    except SystemExit:
        pass
    except Exception as _e:
        sys.print_exception(_e)


_run("boot.py")
if os.getenv("TWIN_SKIP_MAIN") != "1":
    _run("main.py")
del _run, _here
