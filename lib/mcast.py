# IPv4 multicast helpers: address parsing, scope, the membership value, and
# socket set-up that works the same on the board (lwIP), the unix port and
# (for the pure helpers) CPython.
import socket

_IPPROTO_IP = 0  # the unix port has no IPPROTO_IP name; it is 0 everywhere
_SOL_SOCKET = getattr(socket, "SOL_SOCKET", 1)
_SO_REUSEADDR = getattr(socket, "SO_REUSEADDR", 4)
IP_ADD = getattr(socket, "IP_ADD_MEMBERSHIP", None)
IP_DROP = getattr(socket, "IP_DROP_MEMBERSHIP", None)
# Missing on the board: lwIP's TTL is fixed at 255 and there is no way to pick
# the outgoing interface from Python. None means "this port cannot do it".
IP_MULTICAST_TTL = getattr(socket, "IP_MULTICAST_TTL", None)

ANY = "0.0.0.0"


def _digits(s):
    # ASCII only: CPython's isdigit() also accepts other scripts' digits.
    for c in s:
        if not "0" <= c <= "9":
            return False
    return bool(s)


def parse_ipv4(text):
    """'a.b.c.d' -> int. Strict: four decimal octets, no leading zeros."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("not a dotted IPv4 address")
    n = 0
    for p in parts:
        if len(p) > 3 or not _digits(p) or (len(p) > 1 and p[0] == "0"):
            raise ValueError("not a dotted IPv4 address")
        v = int(p)
        if v > 255:
            raise ValueError("octet out of range")
        n = (n << 8) | v
    return n


def format_ipv4(n):
    return "%d.%d.%d.%d" % ((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def ip_bytes(text):
    n = parse_ipv4(text)
    return bytes(((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255))


def is_multicast(n):
    return 0xE0000000 <= n <= 0xEFFFFFFF


def is_link_local_group(n):
    # 224.0.0.0/24: local network control (IGMP, mDNS, routing protocols)
    return (n >> 8) == 0xE00000


def parse_endpoint(text):
    """'GROUP:PORT' -> ('GROUP', port). Raises ValueError with the reason."""
    if not isinstance(text, str):
        raise ValueError("expected a string GROUP:PORT")
    i = text.rfind(":")
    if i < 0:
        raise ValueError("expected GROUP:PORT")
    host, port_text = text[:i], text[i + 1 :]
    n = parse_ipv4(host)
    if not _digits(port_text) or len(port_text) > 5:
        raise ValueError("port must be a number 1-65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    return format_ipv4(n), port


def mreq(group, iface=ANY):
    """The 8-byte ip_mreq: group then interface (4 bytes each)."""
    return ip_bytes(group) + ip_bytes(iface)


def sockaddr(ip, port):
    # The board takes a tuple, the unix port only a raw sockaddr;
    # getaddrinfo gives each its own form.
    return socket.getaddrinfo(ip, port)[0][-1]


def addr_ip(addr):
    """Source IP of a recvfrom address as a dotted string (tuple or raw sockaddr)."""
    if isinstance(addr, tuple):
        return addr[0]
    return "%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7])


def addr_port(addr):
    if isinstance(addr, tuple):
        return addr[1]
    return (addr[2] << 8) | addr[3]


def join(sock, group, iface=ANY):
    sock.setsockopt(_IPPROTO_IP, IP_ADD, mreq(group, iface))


def leave(sock, group, iface=ANY):
    sock.setsockopt(_IPPROTO_IP, IP_DROP, mreq(group, iface))


def open_rx(group, port, iface=ANY):
    """A socket bound to GROUP:PORT (never '': on lwIP that is IPv6-any and
    receives no IPv4) and joined to the group."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(_SOL_SOCKET, _SO_REUSEADDR, 1)
        s.bind(sockaddr(group, port))
        join(s, group, iface)
    except Exception:
        s.close()
        raise
    return s


def open_tx(bind_ip=ANY, port=0, ttl=None):
    """The one transmit socket. Kept apart from the receive sockets so the
    source address is the interface's, on every port. Returns (socket, ttl
    in effect: an int, or None when the port's default applies)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(_SOL_SOCKET, _SO_REUSEADDR, 1)
        if port:
            s.bind(sockaddr(bind_ip, port))
        applied = None
        if ttl is not None and IP_MULTICAST_TTL is not None:
            s.setsockopt(_IPPROTO_IP, IP_MULTICAST_TTL, ttl)
            applied = ttl
    except Exception:
        s.close()
        raise
    return s, applied
