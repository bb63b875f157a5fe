# The board's `socket` module (extmod/modlwip.c on rp2) reproduced over the
# unix port's sockets (MicroPython code). What differs from the unix port:
# - constants take lwIP's values; IPPROTO_IP exists; IP_MULTICAST_*, SO_RCVBUF
#   and inet_aton do not; an unknown option number prints lwIP's warning and
#   does nothing, and the option level is ignored (32 is SO_BROADCAST);
# - addresses are (ip_str, port) tuples in and out; bind(('', p)) binds IPv6-any
#   and never receives IPv4;
# - the membership value must be exactly 8 bytes (group, then interface);
#   groups belong to the interface, not the socket (closing a socket does not
#   leave), at most 8 groups of which the stack holds 2, and active(False) on
#   the NIC drops them all;
# - at most 5 UDP sockets, one held by mDNS and one by DHCP while it runs;
# - multicast loopback off, TTL 255, source address = the interface's even
#   when the socket is bound to a group; a receive queue of a few datagrams.
import io
import sys

import twinctl

_saved = sys.path
sys.path = ()
try:
    import socket as _u
finally:
    sys.path = _saved

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOL_SOCKET = 1
SO_REUSEADDR = 0x04
SO_BROADCAST = 0x20
IPPROTO_IP = 0
IP_ADD_MEMBERSHIP = 0x400
IP_DROP_MEMBERSHIP = 0x401
IPPROTO_TCP = 6
TCP_NODELAY = 0x40
MSG_PEEK = 0x01
MSG_DONTWAIT = 0x02

_EINVAL = 22
_ENOMEM = 12
_EHOSTUNREACH = 113

# Linux numbers for the real socket underneath.
_L_SOL = 1
_L_REUSEADDR = 2
_L_RCVBUF = 8
_L_IP = 0
_L_TTL = 33
_L_LOOP = 34
_L_ADD = 35
_L_DROP = 36

_UDP_PCBS = 5  # MEMP_NUM_UDP_PCB: 4 + mDNS
_IGMP_GROUPS = 8  # MEMP_NUM_IGMP_GROUP; the stack holds 224.0.0.1 and mDNS
_STACK_GROUPS = 2
# Linux sizes this queue in bytes, lwIP in datagrams (4): this holds 4 full-size
# datagrams and about a dozen small ones.
_RCVBUF = 4600


def _ip4(s):
    parts = s.split(".")
    if len(parts) != 4:
        raise ValueError("invalid arguments")
    out = bytearray(4)
    for i, p in enumerate(parts):
        if not p.isdigit() or int(p) > 255:
            raise ValueError("invalid arguments")
        out[i] = int(p)
    return bytes(out)


def _dotted(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def _raw(ip, port):
    return _u.getaddrinfo(ip, port)[0][-1]


def _parse(addr):
    # mp_obj_get_array_fixed_n(addr, 2): a tuple or list of two.
    if not isinstance(addr, (tuple, list)):
        raise TypeError("object '%s' isn't a tuple or list" % type(addr).__name__)
    if len(addr) != 2:
        raise ValueError("tuple/list has wrong length")
    host, port = addr
    if not isinstance(host, str):
        raise TypeError("can't convert to str implicitly")
    return host, int(port)


def _untuple(raw):
    a = _u.sockaddr(raw)
    return (_dotted(a[1]), a[2])


class _Netif:
    """The WIZNET5K netif as lwIP sees it: address, IGMP table, PCB count."""

    def __init__(self):
        self.groups = {}
        self.pcbs = 0
        self._keeper = None

    def keeper(self):
        # One real socket holds the kernel memberships: like lwIP, groups
        # live on the interface, whichever socket asked for them.
        if self._keeper is None:
            self._keeper = _u.socket(_u.AF_INET, _u.SOCK_DGRAM)
        return self._keeper

    def join(self, group_b, iface_b):
        g = _dotted(group_b)
        if group_b[0] < 224 or group_b[0] > 239 or g == "224.0.0.1":
            raise OSError(_EINVAL)
        if iface_b != b"\0\0\0\0" and _dotted(iface_b) != self.ip:
            raise OSError(_EINVAL)  # no netif with that address
        n = self.groups.get(g, 0)
        if n == 0:
            if len(self.groups) >= _IGMP_GROUPS - _STACK_GROUPS:
                raise OSError(_ENOMEM)
            self.keeper().setsockopt(_L_IP, _L_ADD, group_b + b"\0\0\0\0")
        self.groups[g] = n + 1

    def leave(self, group_b, iface_b):
        g = _dotted(group_b)
        n = self.groups.get(g, 0)
        if n == 0:
            raise OSError(_EINVAL)
        if n == 1:
            del self.groups[g]
            self.keeper().setsockopt(_L_IP, _L_DROP, group_b + b"\0\0\0\0")
        else:
            self.groups[g] = n - 1

    def down(self):
        # active(False): the driver removes the netif; every group goes.
        for g in list(self.groups):
            try:
                self.keeper().setsockopt(_L_IP, _L_DROP, _ip4(g) + b"\0\0\0\0")
            except OSError:
                pass
        self.groups = {}

    def budget(self):
        return _UDP_PCBS - 1 - (1 if twinctl.nic["dhcp"] else 0)

    @property
    def ip(self):
        return twinctl.nic["ip"]

    @property
    def up(self):
        return twinctl.nic["up"]


_netif = _Netif()
twinctl.down_hooks.append(_netif.down)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    _ip4(host)
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


class socket(io.IOBase):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        if type != SOCK_DGRAM:
            raise OSError(95)  # this twin models UDP only
        if _netif.pcbs >= _netif.budget():
            raise OSError(_ENOMEM)  # udp_new() found no free PCB
        _netif.pcbs += 1
        self._s = _u.socket(_u.AF_INET, _u.SOCK_DGRAM)
        self._s.setsockopt(_L_SOL, _L_RCVBUF, _RCVBUF)
        self._s.setsockopt(_L_IP, _L_LOOP, 0)
        self._s.setsockopt(_L_IP, _L_TTL, 255)
        self._tx = None
        self._group_bound = False
        self._port = 0
        self._open = True
        self.timeout = -1

    def __repr__(self):
        return "<socket state=0 timeout=%d incoming=0>" % self.timeout

    def ioctl(self, req, arg):
        if req == 10:  # MP_STREAM_GET_FILENO: lets select.poll see the real fd
            return self._s.fileno()
        return -1

    def close(self):
        if self._open:
            self._open = False
            _netif.pcbs -= 1
            self._s.close()
            if self._tx is not None:
                self._tx.close()

    def bind(self, addr):
        host, port = _parse(addr)
        self._port = port
        if host == "":
            # IPv6-any: this PCB never matches an IPv4 datagram.
            return
        b = _ip4(host)
        self._group_bound = 224 <= b[0] <= 239
        self._s.setsockopt(_L_SOL, _L_REUSEADDR, 1)
        self._s.bind(_raw(host, port))

    def setsockopt(self, level, opt, val):
        if opt == 20:
            return None  # lwIP's callback option
        if opt in (SO_REUSEADDR, SO_BROADCAST):
            if opt == SO_REUSEADDR:
                self._s.setsockopt(_L_SOL, _L_REUSEADDR, 1 if val else 0)
            return None
        if opt in (IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP):
            if isinstance(val, int):
                raise TypeError("object with buffer protocol required")
            b = bytes(val)
            if len(b) != 8:
                raise ValueError()
            if opt == IP_ADD_MEMBERSHIP:
                _netif.join(b[:4], b[4:])
            else:
                _netif.leave(b[:4], b[4:])
            return None
        if opt == TCP_NODELAY:
            return None
        print("Warning: lwip.setsockopt() not implemented")
        return None

    def settimeout(self, t):
        self.timeout = -1 if t is None else int(t * 1000)
        self._s.settimeout(t)

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def _sender(self):
        # lwIP sends from a group-bound PCB with the interface's address;
        # Linux would not, so such sends leave through a helper socket.
        if not self._group_bound:
            return self._s
        if self._tx is None:
            t = _u.socket(_u.AF_INET, _u.SOCK_DGRAM)
            t.setsockopt(_L_IP, _L_LOOP, 0)
            t.setsockopt(_L_IP, _L_TTL, 255)
            if _netif.ip != "0.0.0.0":
                t.setsockopt(_L_SOL, _L_REUSEADDR, 1)
                t.bind(_raw(_netif.ip, self._port))
            self._tx = t
        return self._tx

    def sendto(self, data, addr):
        host, port = _parse(addr)
        _ip4(host)
        if not _netif.up or _netif.ip == "0.0.0.0":
            raise OSError(_EHOSTUNREACH)  # ip4_route: no netif up
        if twinctl.tx_fault is not None:  # an injected chip fault hits this frame
            twinctl.tx_fault()
            return len(data)  # linkoutput's result is ignored: sendto "succeeded"
        return self._sender().sendto(data, _raw(host, port))

    def recvfrom(self, n, flags=0):
        data, raw = self._s.recvfrom(n)
        return data, _untuple(raw)

    def recv(self, n, flags=0):
        return self._s.recv(n)

    def readinto(self, buf, nbytes=None):
        # The stream layer keeps reading until the buffer is full: several
        # datagrams end up glued together, boundaries lost.
        mv = memoryview(buf)
        want = len(buf) if nbytes is None else nbytes
        got = 0
        while got < want:
            chunk = self._s.recv(want - got)
            if not chunk:
                break
            mv[got:got + len(chunk)] = chunk
            got += len(chunk)
        return got

    def read(self, n=-1):
        return self._s.recv(n if n > 0 else 1500)

    def write(self, data):
        raise OSError(_EINVAL)

    def makefile(self, *a):
        return self
