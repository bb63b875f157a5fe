"""Commands to paste into another terminal: the tools, run inside a PC of a private LAN.

`sim --serve` and `emu --lan` keep a board on a LAN of network namespaces and print, for its
PCs, lines such as

    ip netns exec mcr4242x1-sender .venv/bin/python -m tools probe --iface 198.18.0.20

run from the repository (the tools are `python -m tools`), as root (`ip netns exec`).
"""

import os
import sys

from tools import fw


def python():
    """This interpreter, relative to the repository when it lives there (.venv/bin/python)."""
    exe = sys.executable
    return os.path.relpath(exe, fw.ROOT) if exe.startswith(str(fw.ROOT) + os.sep) else exe


def command(host, argv):
    """The line that runs `python -m tools ARGV` in the host's namespace."""
    return "ip netns exec %s %s -m tools %s" % (host.ns, python(), argv)


def lines(prefix, entries):
    """The block to print: a heading, then a comment and a command per (what, host, argv)."""
    out = ["%s: from the repository, in another terminal (root):" % prefix]
    for what, host, argv in entries:
        out += ["  # %s" % what, "  " + command(host, argv)]
    return out
