"""The benchmark's private network: one fresh network namespace, nothing else.

The driver re-executes itself in a namespace of its own (the twin's helper,
``tools.twin.lan.private_namespace_argv``: ``unshare --net``), so it and every
process it starts (sender, receiver, relays, valgrind) live in a namespace that
exists only for this run and disappears with it. Inside, only ``lo`` exists:

* ``lo`` up with ``multicast on``, extra addresses ``SENDER_IP`` (the sender's
  and receiver's source, 198.18.0.1) and ``RELAY_IP`` (what the relay believes
  is its own address, 198.18.0.2: the own-address guard compares against it);
* a ``224.0.0.0/4 dev lo src SENDER_IP`` route, so multicast never needs (and
  never finds) any other interface.

The machine's own interfaces are never touched: the namespace has none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tools.twin import lan

SENDER_IP = "198.18.0.1"
RELAY_IP = "198.18.0.2"
_MARK = "MCAST_RELAY_BENCH_NETNS"


def in_private_namespace() -> bool:
    return os.environ.get(_MARK) == str(os.getpid())


def available() -> tuple[bool, str]:
    """(True, "") if this process can make a private network namespace."""
    if sys.platform != "linux":
        return False, "not Linux"
    if shutil.which("ip") is None:
        return False, "`ip` not found (iproute2)"
    return lan.private_namespace_available()


def reexec_inside(argv: list[str]) -> int:
    """Run `python -m bench argv` again inside a new network namespace; returns its exit code.
    The child sets the namespace up itself (setup()) before anything else."""
    cmd = [
        *lan.private_namespace_argv(),
        "sh",
        "-c",
        'export %s=$$; exec "$0" "$@"' % _MARK,
        sys.executable,
        "-m",
        "bench",
        *argv,
    ]
    return subprocess.call(cmd)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


def setup() -> None:
    """Configure the fresh namespace: lo up, multicast, addresses, the 224/4 route."""
    if not in_private_namespace():
        raise RuntimeError("bench.ns.setup() outside the benchmark's own namespace")
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines() if line.strip()]
    if names != ["lo"]:  # a fresh namespace has only lo: refuse anything else
        raise RuntimeError("not a fresh network namespace (interfaces: %s)" % names)
    _ip("link", "set", "lo", "up")
    _ip("link", "set", "lo", "multicast", "on")
    _ip("addr", "add", SENDER_IP + "/32", "dev", "lo")
    _ip("addr", "add", RELAY_IP + "/32", "dev", "lo")
    _ip("route", "add", "224.0.0.0/4", "dev", "lo", "src", SENDER_IP)
