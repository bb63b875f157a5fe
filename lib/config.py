# config.json -> the normalized config, or every problem found in it.
# Runs on the board (MicroPython, little RAM) and on CPython (host tools), so it
# is plain Python: no f-strings, typing, dataclasses or re. Nothing here raises:
#   validate(obj, max_udp_sockets=5) -> (cfg, [])  or  (None, [error, ...])
#   load(path="config.json")         -> the same, plus file and JSON errors
# Error text: "key.path: VALUE problem (allowed: ...)". The order of the errors
# never depends on dict order (MicroPython dicts are not insertion ordered).
try:
    import mcast
except ImportError:  # imported as lib.config from the repository root
    from lib import mcast

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# lwIP on the board: 5 UDP sockets (MEMP_NUM_UDP_PCB = 4 + mDNS), 8 IGMP groups
# of which the stack keeps 2. The relay needs 1 transmit socket (it also serves
# discovery) + 1 receive socket per route; DHCP holds one more while it runs.
MAX_UDP_SOCKETS = const(5)
MAX_IGMP_GROUPS = const(8)
STACK_IGMP_GROUPS = const(2)
BAUD_MIN = const(100000)
# RP2040 SPI: half its peripheral clock. The stock rp2 firmware runs that clock
# at 48 MHz, so it programs 24 MHz at most, and for any other rate the fastest
# 48 MHz / (even divider x divider) not above it (20 MHz: 12). A firmware with
# a 125 MHz peripheral clock reaches 62.5 MHz (W5100S: 70 MHz, W5500: 80 MHz).
BAUD_MAX = const(62500000)
BAUD_NOTE = "; the stock firmware programs at most 24000000"
GPIO_MAX = const(29)
RATE_MAX = const(100000)
RATE_DEFAULT = const(5000)
BURST_MIN = const(16)
WDT_MAX_MS = const(8388)  # RP2040 watchdog limit
# Armed before the chip check and the driver's start-up (~0.4 s unfed): shorter
# would reset a healthy board while it boots, again and again.
WDT_MIN_MS = const(1000)
NAME_MAX = const(16)
ALLOW_MAX = const(16)  # source filters per route (checked per datagram)
MAX_FILE_BYTES = const(16384)
SHOW_MAX = const(40)
_HUGE = 10**24  # shown as "(huge number)" (CPython cannot print ints over 4300 digits)

# RP2040 pin functions: SPI_PINS[bus] = (SCK, MOSI = TX, MISO = RX)
SPI_PINS = (
    ((2, 6, 18, 22), (3, 7, 19, 23), (0, 4, 16, 20)),
    ((10, 14, 26), (11, 15, 27), (8, 12, 28)),
)
PIN_KEYS = ("sck", "mosi", "miso", "cs", "rst", "intn")
PIN_ROLE = ("an SCK", "a MOSI (TX)", "a MISO (RX)")

# W5100S-EVB-Pico wiring. "intn": key absent -> 21 (the board's wire);
# null -> no interrupt wire (the driver then polls the chip every 64 ms).
NIC_DEFAULTS = {
    "spi": 0,
    "baudrate": 24000000,  # the stock firmware's fastest (BAUD_MAX); 20 MHz would be 12
    "chip": "auto",
    "sck": 18,
    "mosi": 19,
    "miso": 16,
    "cs": 17,
    "rst": 20,
    "intn": 21,
}
NIC_KEYS = ("spi", "baudrate", "chip") + PIN_KEYS
# The chip boot.py asks for before it calls the driver (lib/wizchip.py); "auto":
# the one of the board this firmware image was built for.
CHIPS = ("auto", "w5100s", "w5500")
NETWORK_KEYS = ("dhcp", "ip", "netmask", "gateway", "dns")
ROUTE_KEYS = ("from", "to", "name", "rate_pps", "burst", "allow", "allow_reserved")
DISCOVERY_DEFAULTS = {"enabled": True, "group": "239.255.10.1:50010", "replies_per_s": 5}
DISCOVERY_KEYS = ("enabled", "group", "replies_per_s")
# (key, min, max, default, null allowed, note). rate_pps is the default cap of
# the routes: the normalized "relay" section leaves it out (each route has its own).
RELAY_SPEC = (
    ("max_datagram", 1, 8192, 1472, False, ""),
    ("stats_interval_s", 0, 86400, 10, False, "; 0 = off"),
    ("ttl", 1, 255, None, True, ""),
    ("rate_pps", 0, RATE_MAX, RATE_DEFAULT, False, "; 0 = no cap"),
    ("link_check_ms", 50, 60000, 500, False, ""),
    ("link_wait_s", 0, 300, 10, False, ""),
    ("watchdog_ms", 0, WDT_MAX_MS, 0, False, "; 0 = off, else at least 1000"),
)
RELAY_KEYS = tuple([s[0] for s in RELAY_SPEC])
RELAY_DEFAULTS = dict([(s[0], s[3]) for s in RELAY_SPEC])
DEFAULTS = {"nic": NIC_DEFAULTS, "relay": RELAY_DEFAULTS, "discovery": DISCOVERY_DEFAULTS}
TOP_KEYS = ("nic", "network", "routes", "relay", "discovery")  # first 3 required


def _show(v, n=SHOW_MAX):
    """A short printable rendering of any value, the same on CPython and the board."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        if _looks_typed(v):  # "21" must not read as the number 21
            return '"%s"' % v
        out = []
        for ch in v[:n]:
            o = ord(ch)
            out.append("?" if o < 32 or 127 <= o < 160 else ch)
        return "".join(out) + ("..." if len(v) > n else "")
    if isinstance(v, int):
        return str(v) if -_HUGE < v < _HUGE else "(huge number)"
    if isinstance(v, float):
        if v == v and -1e15 < v < 1e15 and v == int(v):
            return "%d.0" % int(v)
        return "%.6g" % v
    if isinstance(v, list):
        return "[...]" if v else "[]"
    if isinstance(v, dict):
        return "{...}" if v else "{}"
    return "(%s)" % type(v).__name__


def _looks_typed(s):
    """True for "", "true", "false", "null" and plain numbers such as "-1.5"."""
    if s in ("", "true", "false", "null"):
        return True
    t = s[1:] if s[0] == "-" else s
    i = t.find(".")
    if i >= 0:
        t = t[:i] + t[i + 1 :]
    return 0 < len(t) < 30 and _digits(t) and i != 0


def _digits(s):
    """ASCII digits only (CPython's isdigit() also takes other scripts' digits)."""
    for ch in s:
        if not "0" <= ch <= "9":
            return False
    return True


def _ascii(v):
    # mcast's parsers use isdigit(): keep non-ASCII digits out so CPython
    # rejects what the board rejects
    if isinstance(v, str):
        for ch in v:
            if ord(ch) > 126:
                raise ValueError("not ASCII")
    return v


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _host_mask(prefix):
    return 0xFFFFFFFF >> prefix


def _unicast_problem(n):
    if n >> 24 == 0:
        return "is in 0.0.0.0/8 (this network)"
    if n >> 24 == 127:
        return "is a loopback address (127.0.0.0/8)"
    if mcast.is_multicast(n):
        return "is a multicast address (224.0.0.0/4)"
    if n >= 0xF0000000:
        return "is a broadcast or reserved address (240.0.0.0/4)"
    return None


class _Check:
    def __init__(self):
        self.errors = []

    def err(self, path, v, problem):
        self.errors.append("%s: %s %s" % (path, _show(v), problem))

    def keys(self, path, d, allowed):
        bad = [k for k in d if k not in allowed]
        for k in sorted(bad, key=_show):
            self.errors.append(
                "%s%s: unknown key (allowed: %s)"
                % (path + "." if path else "", _show(k), ", ".join(allowed))
            )

    def obj(self, path, v, keys):
        """v if it is an object (its unknown keys reported), else None."""
        if isinstance(v, dict):
            self.keys(path, v, keys)
            return v
        self.err(path, v, "is not an object")
        return None

    def integer(self, path, v, lo, hi, null=False, note=""):
        """True if v is an int in lo..hi (or null where allowed)."""
        if v is None and null:
            return True
        allowed = "(allowed: %d-%d%s%s)" % (lo, hi, " or null" if null else "", note)
        if not _is_int(v):
            self.err(path, v, "is not an integer " + allowed)
        elif not lo <= v <= hi:
            self.err(path, v, "is out of range " + allowed)
        else:
            return True
        return False

    def boolean(self, path, v):
        if isinstance(v, bool):
            return v
        self.err(path, v, "is not true or false")
        return None

    def ip(self, path, v):
        try:
            return mcast.parse_ipv4(_ascii(v))
        except Exception:
            self.err(path, v, "is not an IPv4 address (allowed: a.b.c.d, each 0-255)")
        return None

    def endpoint(self, path, v, reserved_ok):
        """'GROUP:PORT' -> (normalized text, group, port), or None after an error."""
        try:
            g, port = mcast.parse_endpoint(_ascii(v))
        except Exception as e:
            self.err(path, v, "is not GROUP:PORT (%s; e.g. 239.1.2.3:5000)" % e)
            return None
        n = mcast.parse_ipv4(g)
        if not mcast.is_multicast(n):
            self.err(path, v, "is not a multicast group (224.0.0.0-239.255.255.255)")
        elif n == 0xE0000001 or n == 0xE0000002:
            self.err(
                path, v, "is used by the IP stack (224.0.0.1 all-hosts, 224.0.0.2 all-routers)"
            )
        elif mcast.is_link_local_group(n) and not reserved_ok:
            self.err(
                path, v, 'is in the reserved 224.0.0.0/24 (allowed: with "allow_reserved": true)'
            )
        else:
            return "%s:%d" % (g, port), n, port
        return None


def _nic(c, d):
    out = {}
    for k in NIC_KEYS:
        out[k] = d[k] if k in d else NIC_DEFAULTS[k]
    spi = out["spi"] if c.integer("nic.spi", out["spi"], 0, 1) else None
    c.integer("nic.baudrate", out["baudrate"], BAUD_MIN, BAUD_MAX, note=BAUD_NOTE)
    if out["chip"] not in CHIPS:
        c.err("nic.chip", out["chip"], "is not a chip the relay knows (allowed: %s)" % ", ".join(CHIPS))
    used = {}
    for i in range(6):
        k = PIN_KEYS[i]
        v = out[k]
        path = "nic." + k
        dflt = "" if k in d else "(default) "
        if i < 3 and spi is not None:
            ok = SPI_PINS[spi][i]
            allowed = "(allowed: %s)" % ", ".join([str(p) for p in ok])
            if not _is_int(v):
                c.err(path, v, "is not an integer " + allowed)
                continue
            if v not in ok:
                c.err(path, v, "%sis not %s pin of SPI%d %s" % (dflt, PIN_ROLE[i], spi, allowed))
                continue
        elif not c.integer(path, v, 0, GPIO_MAX, k == "intn", ", GPIO") or v is None:
            continue
        if v in used:
            c.err(path, v, "%sis already used by nic.%s (allowed: each pin once)" % (dflt, used[v]))
        else:
            used[v] = k
    return out


def _network(c, d):
    dhcp = False
    if "dhcp" in d:
        dhcp = c.boolean("network.dhcp", d["dhcp"])
    if dhcp:
        for k in NETWORK_KEYS[1:]:
            if k in d:
                c.err(
                    "network." + k, d[k], 'is not allowed with "dhcp": true (allowed: dhcp alone)'
                )
        return {"dhcp": True}
    out = {"dhcp": False}
    val = {}
    for k in NETWORK_KEYS[1:]:
        if k in d:
            out[k] = d[k]
            val[k] = c.ip("network." + k, d[k])
        elif k == "gateway" or k == "dns":
            out[k] = mcast.ANY
        elif dhcp is not None:  # an invalid "dhcp" leaves it open whether these are needed
            c.errors.append('network.%s: missing (required unless "dhcp": true)' % k)
    mask = val.get("netmask")
    prefix = None
    if mask is not None:
        host = ~mask & 0xFFFFFFFF
        prefix = 32
        while host & 1:
            host >>= 1
            prefix -= 1
        if host:
            c.err(
                "network.netmask",
                d["netmask"],
                "is not a contiguous netmask (allowed: /1-/30, e.g. 255.255.255.0)",
            )
            prefix = None
        elif not 1 <= prefix <= 30:
            c.err(
                "network.netmask",
                d["netmask"],
                "is a /%d (allowed: /1-/30, e.g. 255.255.255.0)" % prefix,
            )
            prefix = None
    ip = val.get("ip")
    if ip is not None:
        p = _unicast_problem(ip)
        if p:
            c.err("network.ip", d["ip"], p + " (allowed: a unicast host address)")
            ip = None
    subnet = None
    if ip is not None and prefix is not None:
        hm = _host_mask(prefix)
        subnet = "%s/%d" % (mcast.format_ipv4(ip & ~hm & 0xFFFFFFFF), prefix)
        if ip & hm in (0, hm):
            c.err(
                "network.ip",
                d["ip"],
                "is the %s address of %s (allowed: a host in it)"
                % ("network" if ip & hm == 0 else "broadcast", subnet),
            )
            subnet = None
    gw = val.get("gateway")
    if gw:  # 0.0.0.0 = no gateway
        p = _unicast_problem(gw)
        if p:
            c.err(
                "network.gateway",
                d["gateway"],
                p + " (allowed: a router in the subnet, or 0.0.0.0)",
            )
        elif subnet:
            if (gw ^ ip) & ~hm & 0xFFFFFFFF:
                p = "is outside " + subnet
            elif gw == ip:
                p = "is the board's own ip"
            elif gw & hm in (0, hm):
                p = "is the network or broadcast address of " + subnet
            if p:
                c.err(
                    "network.gateway",
                    d["gateway"],
                    p + " (allowed: a router in %s, or 0.0.0.0)" % subnet,
                )
    dns = val.get("dns")
    if dns:  # 0.0.0.0 = none
        p = _unicast_problem(dns)
        if p:
            c.err("network.dns", d["dns"], p + " (allowed: a unicast server, or 0.0.0.0)")
    return out


def _relay(c, d):
    out = {}
    for k, lo, hi, dflt, null, note in RELAY_SPEC:
        out[k] = d[k] if k in d else dflt
        c.integer("relay." + k, out[k], lo, hi, null, note)
    wd = out["watchdog_ms"]
    if _is_int(wd) and 0 < wd < WDT_MIN_MS:
        c.err("relay.watchdog_ms", wd, "is too short to let the board start (allowed: 0 = off, "
              "or %d-%d)" % (WDT_MIN_MS, WDT_MAX_MS))
    return out


def _discovery(c, d):
    """-> (normalized section, (text, group, port) when discovery is on and valid)."""
    out = {}
    for k in DISCOVERY_KEYS:
        out[k] = d[k] if k in d else DISCOVERY_DEFAULTS[k]
    on = c.boolean("discovery.enabled", out["enabled"])
    ep = c.endpoint("discovery.group", out["group"], False)
    if ep:
        out["group"] = ep[0]
    c.integer("discovery.replies_per_s", out["replies_per_s"], 1, 100)
    return out, (ep if on else None)


def _cidr(e):
    """'a.b.c.d' or 'a.b.c.d/n' -> (address, prefix or None); ValueError if neither."""
    parts = e.split("/")
    if len(parts) > 2:
        raise ValueError
    n = mcast.parse_ipv4(_ascii(parts[0]))
    if len(parts) == 1:
        return n, None
    b = parts[1]
    if not b or not _digits(b) or len(b) > 2 or (b[0] == "0" and b != "0") or int(b) > 32:
        raise ValueError
    return n, int(b)


def _allow(c, path, v):
    if not isinstance(v, list):
        c.err(path, v, 'is not a list (allowed: ["a.b.c.d" or "a.b.c.d/n", ...])')
        return None
    if len(v) > ALLOW_MAX:
        c.err(path, v, "has %d entries (allowed: at most %d)" % (len(v), ALLOW_MAX))
    out = []
    for i in range(len(v)):
        e = v[i]
        p = "%s[%d]" % (path, i)
        try:
            n, bits = _cidr(e)
        except Exception:
            c.err(p, e, "is not an address or CIDR block (allowed: a.b.c.d or a.b.c.d/n, n 0-32)")
            continue
        hm = _host_mask(32 if bits is None else bits)
        if n & hm:
            c.err(
                p,
                e,
                "has host bits set (allowed: %s/%d)"
                % (mcast.format_ipv4(n & ~hm & 0xFFFFFFFF), bits),
            )
        elif not hm and n >= 0xE0000000:
            c.err(p, e, "is not a unicast source address")
        else:
            out.append(mcast.format_ipv4(n) + ("" if bits is None else "/%d" % bits))
    return out


def _route(c, i, r, rate_default, disc):
    """-> (normalized route, [from endpoint, to endpoint]) or None if r is no object."""
    path = "routes[%d]" % i
    if c.obj(path, r, ROUTE_KEYS) is None:
        return None
    rsv = False
    if "allow_reserved" in r:
        rsv = c.boolean(path + ".allow_reserved", r["allow_reserved"])
    out = {"allow_reserved": rsv}
    eps = []
    for k in ("from", "to"):
        ep = None
        if k not in r:
            c.errors.append("%s.%s: missing (required, GROUP:PORT)" % (path, k))
        else:
            out[k] = r[k]
            ep = c.endpoint(path + "." + k, r[k], rsv is True)
        if ep:
            out[k] = ep[0]
            if disc and ep[0] == disc[0]:
                c.err(path + "." + k, r[k], "is the discovery group (allowed: another GROUP:PORT)")
                ep = None
            elif disc and k == "from" and ep[2] == disc[2]:
                c.err(
                    path + ".from",
                    r[k],
                    "uses the discovery port, which discovery binds on 0.0.0.0:%d (allowed: another port)"
                    % disc[2],
                )
                ep = None
        eps.append(ep)
    if eps[0] and eps[1] and eps[0][0] == eps[1][0]:
        c.err(path + ".to", r["to"], "is the same as %s.from (allowed: another GROUP:PORT)" % path)
        eps[1] = None
    name = r.get("name", "route%d" % i)
    if "name" in r and (
        not isinstance(name, str)
        or not 1 <= len(name) <= NAME_MAX
        or [ch for ch in name if ord(ch) <= 32 or ord(ch) == 127]
    ):
        c.err(
            path + ".name", name, "is not a name (allowed: 1-%d characters, no spaces)" % NAME_MAX
        )
        name = None
    out["name"] = name
    rate = r["rate_pps"] if "rate_pps" in r else rate_default
    out["rate_pps"] = rate
    if not c.integer(path + ".rate_pps", rate, 0, RATE_MAX, False, "; 0 = no cap"):
        rate = 0
    if "burst" in r:
        out["burst"] = r["burst"]
        c.integer(path + ".burst", r["burst"], 1, RATE_MAX)
    else:
        out["burst"] = max(rate // 10, BURST_MIN)
    out["allow"] = _allow(c, path + ".allow", r["allow"]) if "allow" in r else []
    return out, eps


def _routes(c, v, dhcp, rate_default, disc, max_udp, max_igmp):
    if not isinstance(v, list):
        c.err(
            "routes",
            v,
            'is not a list (allowed: [{"from": "GROUP:PORT", "to": "GROUP:PORT"}, ...])',
        )
        return None
    budget = max(max_udp - 2 - (1 if dhcp else 0), 0)
    if not v:
        c.err("routes", v, "is empty (allowed: 1-%d routes)" % budget)
    elif len(v) > budget:
        c.errors.append(
            "routes: %d routes exceed the board's lwIP budget of %d with %s (%d UDP sockets: "
            "1 mDNS, %s1 transmit, %d receive)"
            % (
                len(v),
                budget,
                "DHCP" if dhcp else "a static IP",
                max_udp,
                "1 DHCP, " if dhcp else "",
                budget,
            )
        )
    out = []
    eps = []
    names = {}
    sources = {}  # from text -> index of the first route with it
    for i in range(len(v)):
        res = _route(c, i, v[i], rate_default, disc)
        r, ep = res if res else (None, (None, None))
        out.append(r)
        eps.append(ep)
        if ep[0]:
            if ep[0][0] in sources:
                c.err(
                    "routes[%d].from" % i,
                    v[i]["from"],
                    "is already used by routes[%d].from (allowed: one route per source)"
                    % sources[ep[0][0]],
                )
            else:
                sources[ep[0][0]] = i
        nm = r and r["name"]
        if nm:
            if nm in names:
                c.err(
                    "routes[%d].name" % i,
                    nm,
                    "%sis already used by routes[%d] (allowed: unique names)"
                    % ("" if "name" in v[i] else "(default) ", names[nm]),
                )
            else:
                names[nm] = i
    # Forwarding loops: a source has one route, so a route leads on to at most
    # one other (the one whose from is its to). Walk each chain once.
    state = [0] * len(v)  # 0 unseen, 1 on the current walk, 2 done
    for i in range(len(v)):
        walk = []
        j = i
        while j is not None and state[j] == 0:
            state[j] = 1
            walk.append(j)
            to = eps[j][1]
            j = sources.get(to[0]) if to else None
        if j is not None and state[j] == 1:
            cyc = walk[walk.index(j) :]
            k = cyc.index(min(cyc))
            cyc = cyc[k:] + cyc[:k] + [cyc[k]]
            c.errors.append(
                "routes: %s is a forwarding loop (%s; allowed: no chain of routes back to its own source)"
                % (
                    " -> ".join([eps[x][0][0] for x in cyc]),
                    " -> ".join(["routes[%d]" % x for x in cyc]),
                )
            )
        for x in walk:
            state[x] = 2
    groups = {}
    for s in sources:
        groups[s.split(":")[0]] = 1
    if disc:
        groups[disc[0].split(":")[0]] = 1
    room = max_igmp - STACK_IGMP_GROUPS
    if len(groups) > room:
        c.errors.append(
            "routes: %d multicast groups to join%s exceed the board's IGMP budget of %d "
            "(%d groups, %d used by the stack)"
            % (
                len(groups),
                " (discovery included)" if disc else "",
                room,
                max_igmp,
                STACK_IGMP_GROUPS,
            )
        )
    return out


def validate(obj, max_udp_sockets=MAX_UDP_SOCKETS, max_igmp_groups=MAX_IGMP_GROUPS):
    """-> (normalized cfg, []) or (None, [every error]). Never raises.
    The budgets are the board's; a host-only benchmark may lift them."""
    c = _Check()
    try:
        cfg = _validate(c, obj, max_udp_sockets, max_igmp_groups)
    except Exception as e:  # a bug here must not keep the board from booting
        c.errors.append("config: internal error (%s: %s)" % (type(e).__name__, _show(str(e))))
    if c.errors:
        return None, c.errors
    return cfg, []


def _validate(c, obj, max_udp, max_igmp):
    if not isinstance(obj, dict):
        c.err("config", obj, "is not an object")
        return None
    c.keys("", obj, TOP_KEYS)
    sec = []  # nic, network, routes: the value, or None after an error
    for k, keys in (("nic", NIC_KEYS), ("network", NETWORK_KEYS), ("routes", None)):
        if k not in obj:
            c.errors.append("%s: missing (required)" % k)
            sec.append(None)
        elif keys:
            sec.append(c.obj(k, obj[k], keys))
        else:
            sec.append(obj[k])
    cfg = {}
    if sec[0] is not None:
        cfg["nic"] = _nic(c, sec[0])
    dhcp = False
    if sec[1] is not None:
        cfg["network"] = _network(c, sec[1])
        dhcp = cfg["network"]["dhcp"]
    # relay and discovery feed the route checks; their errors are listed last
    late = _Check()
    relay = _relay(late, late.obj("relay", obj.get("relay", {}), RELAY_KEYS) or {})
    d = late.obj("discovery", obj.get("discovery", {}), DISCOVERY_KEYS) or {}
    cfg["discovery"], disc = _discovery(late, d)
    rate = relay.pop("rate_pps")
    cfg["relay"] = relay
    if "routes" in obj:
        rate = rate if _is_int(rate) else RATE_DEFAULT
        cfg["routes"] = _routes(c, sec[2], dhcp, rate, disc, max_udp, max_igmp)
    c.errors += late.errors
    return cfg


def load(
    path="config.json",
    max_udp_sockets=MAX_UDP_SOCKETS,
    max_igmp_groups=MAX_IGMP_GROUPS,
    max_bytes=MAX_FILE_BYTES,
):
    """Read and validate a config file -> (cfg, errors). Never raises."""
    try:
        try:
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as e:
            n = getattr(e, "errno", None) or (e.args[0] if e.args else "?")
            if n == 2:
                return None, ["%s: not found (no such file)" % path]
            return None, ["%s: cannot read (errno %s)" % (path, n)]
        if len(data) > max_bytes:
            return None, ["%s: too large (allowed: at most %d bytes)" % (path, max_bytes)]
        try:
            text = data.decode("utf-8")
        except Exception:
            return None, ["%s: not valid UTF-8 text" % path]
        if text[:1] == "\ufeff":  # a BOM from an editor
            text = text[1:]
        import json

        try:
            obj = json.loads(text)
        except Exception as e:
            return None, ["%s: not valid JSON (%s)" % (path, _show(str(e), 80))]
        return validate(obj, max_udp_sockets, max_igmp_groups)
    except Exception as e:
        return None, ["%s: cannot load (%s: %s)" % (path, type(e).__name__, _show(str(e), 80))]
