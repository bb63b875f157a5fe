# The twin's board (MicroPython code): runs boot.py then main.py from the
# current directory in one set of globals, as the board does, with the fakes
# first on sys.path and ./lib on it. Run with `micropython -i` to get the REPL
# afterwards, where `relay` is left. The host side sets MICROPYPATH.
import os
import sys

_here = os.getcwd()
if _here + "/lib" not in sys.path:
    sys.path.append(_here + "/lib")
for _f in ("boot.py", "main.py"):
    try:
        os.stat(_f)
    except OSError:
        continue
    with open(_f) as _src:
        _code = _src.read()
    try:
        exec(_code, globals())
    except KeyboardInterrupt:
        print("KeyboardInterrupt in", _f)
    except Exception as _e:
        sys.print_exception(_e)
del _f, _here
