"""A private test LAN made of Linux network namespaces (CPython, Linux, root).

    from tools.twin.lan import Lan, namespaces_available
    ok, reason = namespaces_available()
    with Lan() as lan:
        board = lan.add_host("board", "198.18.0.10")
        pc = lan.add_host("pc1", "198.18.0.20")
        lan.query()                      # the bridge now snoops strictly
        rx = pc.receiver("224.0.10.1", 50000)
        board.send("224.0.10.1", 50000, count=10)
        rx.wait_for(10)

Layout: one *switch* namespace holding a bridge ``br0``; every host is its own namespace,
joined to the bridge by a veth pair created directly between the two namespaces (the pair never
exists in the machine's own namespace). Inside a host the interface is ``eth0`` with the host's
address (``198.18.0.0/15`` only, enforced), ``multicast on``, a ``224.0.0.0/4 dev eth0`` route
and a MAC ``02:00:<ip bytes>``; ``lo`` is up; IPv6 is off (no MLD/DAD noise). The switch-side
veth is ``p-<hostname>``. Nothing is ever created in, or sent from, the machine's own namespace.
Namespace names are ``<prefix><pid>x<serial>-<host>`` (prefix ``mcr``), so parallel runs never
clash and :func:`cleanup_stale` can tell leftovers of dead runs from live ones.

What the Linux bridge does (experiments on kernel 6.18; see ``net/bridge/br_multicast.c``)
------------------------------------------------------------------------------------------
* With ``mcast_snooping 1`` the bridge learns groups from IGMP reports at once (``bridge mdb``
  lists them), but it only *uses* the table while it believes a querier exists
  (``br_multicast_querier_exists``). Without one it floods every multicast frame to every port
  whose ``mcast_flood`` is on, and to no other port: with ``mcast_flood off`` everywhere and no
  querier, *nothing* multicast gets through, not even to members.
* It trusts the table after it has seen an IGMP general query from another host on a port
  (an 8-byte IGMPv2 query, type 0x11, group 0, to 224.0.0.1, TTL 1; the IP Router Alert option
  is not needed, we send it anyway as real queriers do). The *first* query (while no querier is
  known) arms a delay equal to the query's Max Resp Time: the bridge keeps flooding until it
  expires, to give hosts time to report. A query with Max Resp Time 10 s therefore means 10 s of
  flooding; :meth:`Lan.query` uses 0.1 s and waits it out, so the table is trusted when it
  returns. Later queries (querier still known) take effect immediately.
* Once a querier is known, the port it sent from becomes a multicast *router port* (gets all
  registered and unregistered groups), and unregistered non-link-local groups go to router
  ports only: a non-member port gets nothing even with ``mcast_flood on``. That *is* the strict
  snooping switch. Link-local groups (224.0.0.x: queries, leaves, mDNS) are never registered
  and always take the flood path, which ``mcast_flood off`` blocks: with ``mcast_flood off``
  the hosts never see the queries and so never answer them. Hence ports keep ``mcast_flood on``
  by default (``Lan(mcast_flood=False)`` gives the literal "flood nothing" switch, where only
  unsolicited reports sent on join register a host).
* The querier is remembered for ``mcast_querier_interval`` (default 255 s) after its last
  query, and memberships for ``mcast_membership_interval`` (default 260 s) after their last
  report. Our querier only speaks when :meth:`Lan.query` is called, so both are raised to
  ``hold_s`` (default 3600 s): one query keeps the switch strict for a whole soak run.
  ``mcast_querier 0``: the bridge never queries on its own (not at start, not on port up).
  Of two queriers the lower IP address wins; ours is 198.18.0.254 (``querier_ip=``).
* While another querier is known the bridge ignores IGMP leaves (it expects that querier to
  send group-specific queries). Ports therefore have ``fastleave on``: a leave removes the
  port's membership at once (each port has one host, so this is exact).
* Link down (``Lan.cable(host, up=False)`` sets the switch-side veth down, the host's ``eth0``
  loses carrier): the bridge forgets every group learned on that port at once. On link up the
  bridge does not query and a Linux host does not re-report on carrier change, so the port gets
  nothing until the host joins again (or answers the next :meth:`Lan.query`). The querier
  state survives. ``snooping(False)``/``snooping(True)`` flushes the table and forgets the
  querier: call :meth:`Lan.query` again.
* Hosts: Linux joins with IGMPv3 reports (two, ~1 s apart) until it sees an IGMPv2 query; then it
  uses IGMPv2 (type 0x16 report, 0x17 leave to 224.0.0.2) for the next ~400 s. Reports and queries
  are forwarded to router ports only, so hosts never suppress each other's reports.
* A host's own sockets never receive a group the host did not join (the kernel drops it), so
  "did this port get the traffic" needs a link-level tap: :meth:`Host.capture`.

A namespace for one program alone (no LAN: a twin board that must reach nothing, the
benchmark): :func:`private_namespace_argv`, an ``unshare --net`` prefix.

Cleanup: :meth:`Lan.close` (also ``__exit__`` and an ``atexit`` hook) stops every helper and
process it started, kills whatever still runs inside its namespaces, deletes the switch-side
veths (which removes their ``eth0`` peers) and every namespace. :func:`cleanup_stale` removes
leftovers of runs whose process is gone.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref

from tools.lines import LineProc, stop_process
from tools.twin import traffic

__all__ = [
    "Lan",
    "Host",
    "LanError",
    "McastReceiver",
    "Capture",
    "namespaces_available",
    "cleanup_stale",
    "send_query_bytes",
    "private_namespace_argv",
    "private_namespace_available",
    "igmp_checksum",
    "ALLOWED_NET",
    "DEFAULT_PREFIX",
    "BOARD_IP",
    "SENDER_IP",
    "LISTENER_IP",
]

ALLOWED_NET = ipaddress.ip_network("198.18.0.0/15")
# Where the board and the two PCs stand on the LAN that sim, emu --lan, the benchmark and the
# tests build: the board, the PC that sends (pc1) and the PC that listens (pc2).
BOARD_IP = "198.18.0.10"
SENDER_IP = "198.18.0.20"
LISTENER_IP = "198.18.0.30"
DEFAULT_PREFIX = "mcr"
IFNAME = "eth0"
BRIDGE = "br0"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$")
_SERIAL = itertools.count()
_SERIAL_LOCK = threading.Lock()
_OPEN_LANS: weakref.WeakSet = weakref.WeakSet()
_CMD_TIMEOUT = 20


class LanError(RuntimeError):
    """A command building or tearing down the LAN failed."""


# ---------------------------------------------------------------------------------------------
# IGMP bytes (pure)
# ---------------------------------------------------------------------------------------------
def igmp_checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071) of ``data``: the value to store in the checksum field
    when that field is zero in ``data``; 0 when ``data`` already carries a correct one."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send_query_bytes(group: str = "0.0.0.0", max_resp_s: float = 0.1) -> bytes:
    """The 8 bytes of an IGMPv2 membership query: type 0x11, Max Resp Time in 1/10 s
    (1..255), checksum, group (``0.0.0.0`` = general query)."""
    code = int(round(max_resp_s * 10))
    if not 1 <= code <= 255:
        raise ValueError("max_resp_s must be 0.1 .. 25.5 s")
    grp = ipaddress.IPv4Address(group)
    if int(grp) and not grp.is_multicast:
        raise ValueError("group must be 0.0.0.0 or a multicast address")
    body = struct.pack("!BBH4s", 0x11, code, 0, grp.packed)
    return body[:2] + struct.pack("!H", igmp_checksum(body)) + body[4:]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _run(argv, check=True, timeout=_CMD_TIMEOUT):
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LanError(f"{' '.join(argv)}: {e}") from e
    if check and res.returncode != 0:
        raise LanError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr.strip()}")
    return res


def _netns_list() -> list[str]:
    res = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def _netns_pids(ns: str) -> list[int]:
    res = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _kill_ns_processes(ns: str, grace: float = 1.0) -> None:
    """Stop every process still inside namespace ``ns`` (only namespaces this module made)."""
    pids = [p for p in _netns_pids(ns) if p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        while pids and time.monotonic() < end:
            pids = [p for p in pids if _alive(p)]
            if pids:
                time.sleep(0.02)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
    return True


def _delete_ns(ns: str) -> None:
    _kill_ns_processes(ns)
    _run(["ip", "netns", "del", ns], check=False)


def _next_serial() -> int:
    with _SERIAL_LOCK:
        return next(_SERIAL)


_AVAILABLE: tuple[bool, str] | None = None


def namespaces_available(prefix: str = DEFAULT_PREFIX) -> tuple[bool, str]:
    """``(True, "")`` when this process can build a :class:`Lan`, else ``(False, reason)``.
    Checks the platform, root, the ``ip``/``bridge`` tools, then really makes (and removes) a
    probe namespace with a bridge and a veth pair and runs a command in it. Cached."""
    global _AVAILABLE
    if _AVAILABLE is not None:
        return _AVAILABLE
    if not sys.platform.startswith("linux"):
        _AVAILABLE = (False, f"network namespaces need Linux (this is {sys.platform})")
        return _AVAILABLE
    missing = [t for t in ("ip", "bridge") if shutil.which(t) is None]
    if missing:
        _AVAILABLE = (False, f"iproute2 tools missing: {', '.join(missing)} "
                             "(apt-get install iproute2)")
        return _AVAILABLE
    if os.geteuid() != 0:
        _AVAILABLE = (False, "`ip netns` needs root (CAP_SYS_ADMIN); run the tests as root "
                             "or in a container/VM where you are root")
        return _AVAILABLE
    ns = f"{prefix}{os.getpid()}x{_next_serial()}-probe"
    try:
        _run(["ip", "netns", "add", ns])
        try:
            _run(["ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "1"])
            _run(["ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb"])
            _run(["ip", "netns", "exec", ns, "true"])
        finally:
            _delete_ns(ns)
    except LanError as e:
        _AVAILABLE = (False, f"cannot create network namespaces here: {e}")
        return _AVAILABLE
    _AVAILABLE = (True, "")
    return _AVAILABLE


_PRIVATE: list[str] | None = None


def private_namespace_argv() -> list[str]:
    """The argv prefix that runs a command in a fresh network namespace of its own, holding
    only a downed ``lo`` (whatever runs there reaches nothing): ``unshare --net`` as root,
    with ``--map-root-user`` otherwise. Probed once; RuntimeError when neither works here."""
    global _PRIVATE
    if _PRIVATE is None:
        ok, why = private_namespace_available()
        if not ok:
            raise RuntimeError(why)
    return list(_PRIVATE)


def private_namespace_available() -> tuple[bool, str]:
    """``(True, "")`` when :func:`private_namespace_argv` works here, else ``(False, reason)``."""
    global _PRIVATE
    if _PRIVATE is not None:
        return True, ""
    if shutil.which("unshare") is None:
        return False, "`unshare` not found (util-linux)"
    why = "cannot make a private network namespace (unshare --net, --map-root-user)"
    for prefix in (["unshare", "--net", "--"], ["unshare", "--net", "--map-root-user", "--"]):
        try:
            r = subprocess.run(prefix + ["true"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as e:
            why = f"unshare failed: {e}"
            continue
        if r.returncode == 0:
            _PRIVATE = prefix
            return True, ""
        why = f"{why}: {r.stderr.strip()}"
    return False, why


def cleanup_stale(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Delete namespaces named ``<prefix><pid>x...`` whose ``pid`` is no longer alive (left by
    killed runs), with any process still inside them. Returns the names removed."""
    pat = re.compile(rf"^{re.escape(prefix)}(\d+)x\d+-")
    removed = []
    if shutil.which("ip") is None:
        return removed
    names = _netns_list()
    stale = [n for n in names if (m := pat.match(n)) and not _alive(int(m.group(1)))]
    # switch namespaces last is not needed for correctness, but hosts first keeps it tidy
    for ns in sorted(stale, key=lambda n: n.endswith("-sw")):
        _delete_ns(ns)
        removed.append(ns)
    return removed


# ---------------------------------------------------------------------------------------------
# the pieces
# ---------------------------------------------------------------------------------------------
class McastReceiver(LineProc):
    """A UDP socket in a host, bound to ``group:port`` and (by default) joined on ``eth0``.
    ``datagrams``: list of ``(length, src_ip, src_port, payload_prefix_bytes)``."""

    def __init__(self, host: Host, group: str, port: int, join: bool = True):
        self.host = host
        self.group, self.port = group, port
        self.datagrams: list[tuple[int, str, int, bytes]] = []
        self._acks: list[str] = []
        super().__init__(traffic.argv("listen", group, port, "1" if join else "0", host.ip),
                         ready="ready", popen=host.popen, name=f"receiver in {host.name}",
                         error=LanError)

    def on_line(self, line: str) -> None:
        parts = line.split()
        if parts and parts[0] == "rx":
            data = b"" if parts[4] == "-" else bytes.fromhex(parts[4])
            self.datagrams.append((int(parts[1]), parts[2], int(parts[3]), data))
        elif parts and parts[0] in ("ok", "err"):
            self._acks.append(line)

    @property
    def count(self) -> int:
        return len(self.datagrams)

    def _command(self, cmd: str, timeout: float = 5.0) -> None:
        n = len(self._acks)
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        if not self.wait(lambda: len(self._acks) > n, timeout):
            raise LanError(f"receiver in {self.host.name}: no answer to {cmd!r}")
        ack = self._acks[n]
        if not ack.startswith("ok"):
            raise LanError(f"receiver in {self.host.name}: {ack}")

    def join(self) -> None:
        """IP_ADD_MEMBERSHIP on the socket: the kernel sends a report at once."""
        self._command("join")

    def leave(self) -> None:
        """IP_DROP_MEMBERSHIP: the kernel sends a leave (the bridge has fastleave on)."""
        self._command("leave")

    def rejoin(self) -> None:
        self.leave()
        self.join()

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """True once at least ``n`` datagrams arrived in total."""
        return self.wait(lambda: len(self.datagrams) >= n, timeout)


class Capture(LineProc):
    """A link-level tap (AF_PACKET) on a host's ``eth0``: sees what the switch delivered to
    the port, joined or not. ``packets``: ``(proto, src, dst, sport, dport, ip_len, dir)``."""

    def __init__(self, host: Host, dst: str | None = None, dport: int | None = None,
                 proto: int | None = 17, outgoing: bool = False):
        self.packets: list[tuple[int, str, str, int, int, int, str]] = []
        super().__init__(traffic.argv("capture", host.ifname, dst or "-",
                                      -1 if dport is None else dport,
                                      -1 if proto is None else proto, "1" if outgoing else "0"),
                         ready="ready", popen=host.popen, name=f"capture in {host.name}",
                         error=LanError)

    def on_line(self, line: str) -> None:
        p = line.split()
        if p and p[0] == "pkt":
            self.packets.append((int(p[1]), p[2], p[3], int(p[4]), int(p[5]), int(p[6]), p[7]))

    @property
    def count(self) -> int:
        return len(self.packets)

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        return self.wait(lambda: len(self.packets) >= n, timeout)

    def stop(self, settle: float = 0.1) -> int:
        """Let in-flight frames land, stop the tap, return the count."""
        time.sleep(settle)
        super().stop()
        return self.count


class Host:
    """One namespace on the LAN. Create with :meth:`Lan.add_host`."""

    def __init__(self, lan: Lan, name: str, ns: str, ip: str, prefix: int, port: str):
        self.lan = lan
        self.name = name
        self.ns = ns
        self.ip = ip
        self.prefix = prefix
        self.ifname = IFNAME
        self.port = port  # switch-side veth name (inside the switch namespace)
        self.mac = "02:00:" + ":".join("%02x" % b for b in ipaddress.IPv4Address(ip).packed)

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ip}/{self.prefix}, ns={self.ns})"

    def cmd(self, argv) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(self, argv, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("timeout", 60)
        return subprocess.run(self.cmd(argv), **kw)

    def popen(self, argv, **kw) -> subprocess.Popen:
        proc = subprocess.Popen(self.cmd(argv), **kw)
        self.lan._procs.append(proc)
        return proc

    def carrier(self) -> int | None:
        """``/sys/class/net/eth0/carrier`` as seen inside the host (None if unreadable)."""
        res = self.run(["cat", f"/sys/class/net/{self.ifname}/carrier"],
                       capture_output=True, text=True)
        return int(res.stdout) if res.returncode == 0 and res.stdout.strip() else None

    def receiver(self, group: str, port: int, join: bool = True) -> McastReceiver:
        return McastReceiver(self, group, port, join)

    def capture(self, dst: str | None = None, dport: int | None = None,
                proto: int | None = 17, outgoing: bool = False) -> Capture:
        return Capture(self, dst, dport, proto, outgoing)

    def send(self, group: str, port: int, count: int = 1, interval: float = 0.0,
             payload: bytes = b"", ttl: int = 1, loop: bool = False) -> int:
        """Send ``count`` UDP datagrams from this host (``IP_MULTICAST_IF`` = its address).
        Empty ``payload``: the datagram's index as ASCII. Returns how many sendto() accepted."""
        res = self.run(traffic.argv("send", group, port, count, interval, ttl,
                                    "1" if loop else "0", self.ip, payload.hex()),
                       capture_output=True, text=True, timeout=60 + count * interval)
        if res.returncode != 0:
            raise LanError(f"sender in {self.name}: {res.stderr.strip()}")
        return int(res.stdout.split()[-1])


class Lan:
    """A switch namespace with bridge ``br0`` plus host namespaces. See the module docstring."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, snooping: bool = True,
                 mcast_flood: bool = True, igmp_version: int = 2,
                 querier_ip: str = "198.18.0.254", hold_s: float = 3600.0,
                 fast_leave: bool = True):
        self.prefix = prefix
        self.tag = f"{prefix}{os.getpid()}x{_next_serial()}"
        self.switch_ns = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self.querier: Host | None = None
        self.querier_ip = querier_ip
        self._snooping = snooping
        self._mcast_flood = mcast_flood
        self._fast_leave = fast_leave
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen] = []
        self._closed = False
        _OPEN_LANS.add(self)
        hold = str(int(hold_s * 100))  # the bridge takes these in 1/100 s
        try:
            self._add_ns(self.switch_ns)
            self._ipn("link", "set", "lo", "up")
            self._ipn("link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
                      "mcast_snooping", "1" if snooping else "0", "mcast_querier", "0",
                      "mcast_igmp_version", str(igmp_version),
                      "mcast_querier_interval", hold, "mcast_membership_interval", hold)
            self._ipn("link", "set", BRIDGE, "up")
        except BaseException:
            self.close()
            raise

    # -- plumbing -------------------------------------------------------------------------
    def _ipn(self, *args, ns: str | None = None):
        return _run(["ip", "-n", ns or self.switch_ns, *args])

    def _add_ns(self, ns: str) -> None:
        _run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
              "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])

    def _port_flags(self, port: str) -> None:
        flood = "on" if (self._mcast_flood or not self._snooping) else "off"
        _run(["bridge", "-n", self.switch_ns, "link", "set", "dev", port, "mcast_flood", flood,
              "fastleave", "on" if self._fast_leave else "off"])

    def _all_hosts(self) -> list[Host]:
        return list(self.hosts.values()) + ([self.querier] if self.querier else [])

    # -- building -------------------------------------------------------------------------
    def add_host(self, name: str, ip: str, prefix: int = 15) -> Host:
        """A namespace with ``eth0`` = ``ip/prefix`` plugged into the switch."""
        if self._closed:
            raise LanError("this Lan is closed")
        return self._make_host(name, ip, prefix, register=True)

    def _make_host(self, name: str, ip: str, prefix: int, register: bool) -> Host:
        if not _NAME_RE.match(name):
            raise ValueError(f"host name {name!r}: 1-12 of [A-Za-z0-9_-]")
        if not ipaddress.IPv4Interface(f"{ip}/{prefix}").network.subnet_of(ALLOWED_NET):
            raise ValueError(f"{ip}/{prefix}: test LAN addresses must lie in {ALLOWED_NET}")
        taken = self._all_hosts()
        if any(h.name == name for h in taken):
            raise ValueError(f"host name {name!r} already used")
        if any(h.ip == ip for h in taken) or ip == self.querier_ip and register:
            raise ValueError(f"address {ip} already used")
        host = Host(self, name, f"{self.tag}-{name}", ip, prefix, f"p-{name}")
        self._add_ns(host.ns)
        ns = host.ns
        self._ipn("link", "add", host.port, "type", "veth", "peer", "name", IFNAME, "netns", ns)
        self._ipn("link", "set", "lo", "up", ns=ns)
        self._ipn("link", "set", IFNAME, "address", host.mac, "multicast", "on", "up", ns=ns)
        self._ipn("addr", "add", f"{ip}/{prefix}", "dev", IFNAME, ns=ns)
        self._ipn("route", "add", "224.0.0.0/4", "dev", IFNAME, ns=ns)
        self._ipn("link", "set", host.port, "master", BRIDGE)
        self._port_flags(host.port)
        self._ipn("link", "set", host.port, "up")
        if register:
            self.hosts[name] = host
        return host

    def add_port(self, name: str, ip: str, prefix: int = 15) -> Host:
        """A switch port ``p-NAME`` for a device that brings its own interface, such as the
        emulated board's TAP (created in :attr:`switch_ns` under that name). The host has no
        namespace of its own; :meth:`plug` puts the interface on the bridge."""
        if self._closed:
            raise LanError("this Lan is closed")
        if not _NAME_RE.match(name):
            raise ValueError(f"host name {name!r}: 1-12 of [A-Za-z0-9_-]")
        taken = self._all_hosts()
        if any(h.name == name for h in taken) or any(h.ip == ip for h in taken):
            raise ValueError(f"host name {name!r} or address {ip} already used")
        host = Host(self, name, None, ip, prefix, f"p-{name}")
        self.hosts[name] = host
        return host

    def plug(self, host: Host) -> None:
        """Put a device's own interface (see :meth:`add_port`) on the bridge, link up."""
        self._ipn("link", "set", host.port, "master", BRIDGE)
        self._port_flags(host.port)
        self._ipn("link", "set", host.port, "up")

    # -- switch controls ------------------------------------------------------------------
    def cable(self, host: Host, up: bool) -> None:
        """Pull (``up=False``) or plug back the host's cable: the switch-side veth goes
        down/up, so the host's ``eth0`` loses/regains carrier (it stays admin up)."""
        self._ipn("link", "set", host.port, "up" if up else "down")

    def snooping(self, on: bool, mcast_flood: bool | None = None) -> None:
        """Bridge ``mcast_snooping`` on/off (toggling flushes the table and forgets the
        querier). ``mcast_flood`` None keeps the constructor's choice; snooping off = hub."""
        self._snooping = on
        if mcast_flood is not None:
            self._mcast_flood = mcast_flood
        self._ipn("link", "set", BRIDGE, "type", "bridge", "mcast_snooping", "1" if on else "0")
        for h in self._all_hosts():
            self._port_flags(h.port)

    def query(self, group: str | None = None, max_resp_s: float = 0.1, wait: bool = True) -> None:
        """Send one IGMPv2 query (general, or group-specific with ``group``) from the querier
        host (created on first use). With ``wait`` returns after ``max_resp_s`` + margin:
        hosts have answered and the bridge trusts its table."""
        if self.querier is None:
            self.querier = self._make_host("q", self.querier_ip, 15, register=False)
        pkt = send_query_bytes(group or "0.0.0.0", max_resp_s)
        res = self.querier.run(traffic.argv("query", pkt.hex(), group or "224.0.0.1",
                                            self.querier.ip),
                               capture_output=True, text=True)
        if res.returncode != 0:
            raise LanError(f"query failed: {res.stderr.strip()}")
        if wait:
            time.sleep(max_resp_s + 0.15)

    def _mdb_json(self) -> list:
        # -d is needed for the "router" part of the JSON
        res = _run(["bridge", "-n", self.switch_ns, "-d", "-j", "mdb", "show"])
        return json.loads(res.stdout or "[]")

    def wait_mdb(self, entry: tuple[str, str], present: bool = True,
                 timeout: float = 3.0) -> bool:
        """Poll :meth:`mdb` until ``(host_name, group)`` is (or is no longer) in it. Hosts
        send their report a few ms after the join, so read the table through this."""
        end = time.monotonic() + timeout
        while True:
            if (entry in self.mdb()) == present:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)

    def mdb(self) -> list[tuple[str, str]]:
        """Sorted ``(host_name, group)`` the bridge has learned (the querier shows as "q")."""
        data = self._mdb_json()
        ports = {h.port: h.name for h in self._all_hosts()}
        out = set()
        for block in data:
            for entry in block.get("mdb", []):
                name = ports.get(entry.get("port"))
                if name is not None:
                    out.add((name, entry.get("grp")))
        return sorted(out)

    def routers(self) -> list[str]:
        """Host names whose port the bridge treats as a multicast router port."""
        data = self._mdb_json()
        ports = {h.port: h.name for h in self._all_hosts()}
        out = set()
        for block in data:
            for entries in (block.get("router") or {}).values():
                for e in entries:
                    if e.get("port") in ports:
                        out.add(ports[e["port"]])
        return sorted(out)

    # -- teardown -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop what we started, delete every veth and namespace. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _OPEN_LANS.discard(self)
        for proc in self._procs:
            stop_process(proc)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            _kill_ns_processes(ns)
        if self.switch_ns in self._namespaces:
            for h in self._all_hosts():
                _run(["ip", "-n", self.switch_ns, "link", "del", h.port], check=False)
        for ns in reversed(self._namespaces):
            _run(["ip", "netns", "del", ns], check=False)
        left = set(self._namespaces) & set(_netns_list())
        self._namespaces.clear()
        if left:
            raise LanError(f"could not delete namespaces: {sorted(left)}")

    def __enter__(self) -> Lan:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # last resort; atexit normally gets there first
        try:
            if not self._closed and sys is not None:
                self.close()
        except Exception:
            pass


@atexit.register
def _close_all() -> None:
    for lan in list(_OPEN_LANS):
        try:
            lan.close()
        except Exception as e:  # keep closing the others
            print(f"tools.twin.lan: cleanup failed: {e}", file=sys.stderr)
