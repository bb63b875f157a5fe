"""lib/config.py: every bad config is caught with its key path and value, the
good one normalizes to the documented shape, nothing ever raises, and the real
MicroPython gives exactly the same answers as CPython."""

import copy
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.twin.mpy import LIB, run_code  # noqa: E402

if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))
import config  # noqa: E402

GOOD = json.loads((ROOT / "config.json").read_text())



def _documented_normalized():
    """The "Normalized config" block of docs/architecture.md: what validate() makes of the
    repository's config.json (so the document is checked too)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("## Normalized config", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


NORMALIZED = _documented_normalized()
SHAPE = {k: set(v) for k, v in NORMALIZED.items() if isinstance(v, dict)}
ROUTE_SHAPE = set(NORMALIZED["routes"][0])

A, B, C = "224.0.10.1:50000", "224.0.10.2:50000", "239.1.1.1:6000"


def edit(*ops):
    """GOOD with changes: (path, value) sets, (path,) deletes; path 'a.b' or 'routes.0.to'."""
    cfg = copy.deepcopy(GOOD)
    for op in ops:
        *parents, last = [int(p) if p.isdigit() else p for p in op[0].split(".")]
        node = cfg
        for p in parents:
            node = node[p]
        if len(op) == 1:
            del node[last]
        else:
            node[last] = op[1]
    return cfg


def routes(*pairs, **extra):
    return edit(("routes", [dict({"from": f, "to": t}, **extra) for f, t in pairs]))


# (id, config, validate kwargs, the error must start with this, and contain this)
BAD = [
    (
        "sck-not-spi0",
        edit(("nic.sck", 5)),
        {},
        "nic.sck: 5 is not an SCK pin of SPI0 (allowed: 2, 6, 18, 22)",
        "",
    ),
    ("spi-bus", edit(("nic.spi", 2)), {}, "nic.spi: 2 ", "allowed: 0-1"),
    (
        "spi1-with-spi0-pins",
        edit(("nic.spi", 1)),
        {},
        "nic.sck: 18 is not an SCK pin of SPI1",
        "10, 14, 26",
    ),
    (
        "spi1-default-mosi",
        edit(("nic.spi", 1), ("nic.sck", 10), ("nic.mosi",)),
        {},
        "nic.mosi: 19 (default) is not a MOSI (TX) pin of SPI1",
        "11, 15, 27",
    ),
    ("miso-wrong", edit(("nic.miso", 19)), {}, "nic.miso: 19 is not a MISO (RX) pin of SPI0", ""),
    (
        "baud-too-fast",
        edit(("nic.baudrate", 70000000)),
        {},
        "nic.baudrate: 70000000 is out of range",
        "100000-62500000; the stock firmware programs at most 24000000",
    ),
    ("baud-bool", edit(("nic.baudrate", True)), {}, "nic.baudrate: true is not an integer", ""),
    (
        "baud-float",
        edit(("nic.baudrate", 20000000.0)),
        {},
        "nic.baudrate: 20000000.0 is not an integer",
        "",
    ),
    ("cs-gpio-range", edit(("nic.cs", 30)), {}, "nic.cs: 30 is out of range", "0-29"),
    (
        "rst-shared-with-cs",
        edit(("nic.rst", 17)),
        {},
        "nic.rst: 17 is already used by nic.cs",
        "each pin once",
    ),
    (
        "cs-on-default-rst",
        edit(("nic.cs", 20), ("nic.rst",)),
        {},
        "nic.rst: 20 (default) is already used by nic.cs",
        "",
    ),
    ("intn-string", edit(("nic.intn", "21")), {}, 'nic.intn: "21" is not an integer', "or null"),
    ("nic-unknown", edit(("nic.speed", 1)), {}, "nic.speed: unknown key", "allowed: spi, baudrate"),
    ("nic-not-object", edit(("nic", [1])), {}, "nic: [...] is not an object", ""),
    ("top-comment", edit(("_comment", "hi")), {}, "_comment: unknown key", "nic, network, routes"),
    ("top-not-object", [GOOD], {}, "config: [...] is not an object", ""),
    ("network-missing", edit(("network",)), {}, "network: missing", "required"),
    ("routes-missing", edit(("routes",)), {}, "routes: missing", "required"),
    (
        "ip-octet",
        edit(("network.ip", "192.168.11.256")),
        {},
        "network.ip: 192.168.11.256 is not an IPv4 address",
        "",
    ),
    (
        "ip-leading-zero",
        edit(("network.ip", "192.168.011.4")),
        {},
        "network.ip: 192.168.011.4 is not an IPv4 address",
        "",
    ),
    (
        "ip-long-value-cut",
        edit(("network.ip", "x" * 100)),
        {},
        "network.ip: " + "x" * 40 + "... is not an IPv4 address",
        "",
    ),
    (
        "ip-network-address",
        edit(("network.ip", "192.168.11.0")),
        {},
        "network.ip: 192.168.11.0 is the network address of 192.168.11.0/24",
        "",
    ),
    (
        "ip-broadcast",
        edit(("network.ip", "192.168.11.255")),
        {},
        "network.ip: 192.168.11.255 is the broadcast address",
        "",
    ),
    (
        "ip-loopback",
        edit(("network.ip", "127.0.0.5")),
        {},
        "network.ip: 127.0.0.5 is a loopback",
        "",
    ),
    (
        "ip-multicast",
        edit(("network.ip", "239.1.2.3")),
        {},
        "network.ip: 239.1.2.3 is a multicast",
        "",
    ),
    ("ip-zero", edit(("network.ip", "0.0.0.0")), {}, "network.ip: 0.0.0.0 is in 0.0.0.0/8", ""),
    (
        "ip-all-ones",
        edit(("network.ip", "255.255.255.255")),
        {},
        "network.ip: 255.255.255.255 is a broadcast",
        "",
    ),
    (
        "mask-holes",
        edit(("network.netmask", "255.0.255.0")),
        {},
        "network.netmask: 255.0.255.0 is not a contiguous netmask",
        "/1-/30",
    ),
    (
        "mask-32",
        edit(("network.netmask", "255.255.255.255")),
        {},
        "network.netmask: 255.255.255.255 is a /32",
        "",
    ),
    ("mask-0", edit(("network.netmask", "0.0.0.0")), {}, "network.netmask: 0.0.0.0 is a /0", ""),
    (
        "gateway-outside",
        edit(("network.gateway", "10.0.0.1")),
        {},
        "network.gateway: 10.0.0.1 is outside 192.168.11.0/24",
        "",
    ),
    (
        "gateway-is-ip",
        edit(("network.gateway", "192.168.11.104")),
        {},
        "network.gateway: 192.168.11.104 is the board's own ip",
        "",
    ),
    (
        "dns-multicast",
        edit(("network.dns", "224.0.0.251")),
        {},
        "network.dns: 224.0.0.251 is a multicast address",
        "",
    ),
    ("netmask-missing", edit(("network.netmask",)), {}, "network.netmask: missing", "dhcp"),
    (
        "dhcp-with-ip",
        edit(("network", {"dhcp": True, "ip": "10.0.0.2"})),
        {},
        'network.ip: 10.0.0.2 is not allowed with "dhcp": true',
        "",
    ),
    (
        "dhcp-string",
        edit(("network.dhcp", "yes")),
        {},
        "network.dhcp: yes is not true or false",
        "",
    ),
    ("network-unknown", edit(("network.mtu", 1500)), {}, "network.mtu: unknown key", ""),
    ("routes-empty", edit(("routes", [])), {}, "routes: [] is empty", ""),
    (
        "routes-object",
        edit(("routes", {"from": A, "to": B})),
        {},
        "routes: {...} is not a list",
        "",
    ),
    (
        "route-not-object",
        edit(("routes", ["224.0.10.1:50000"])),
        {},
        "routes[0]: 224.0.10.1:50000 is not an object",
        "",
    ),
    (
        "to-unicast",
        edit(("routes.0.to", "10.1.2.3:50000")),
        {},
        "routes[0].to: 10.1.2.3:50000 is not a multicast group (224.0.0.0-239.255.255.255)",
        "",
    ),
    (
        "from-no-port",
        edit(("routes.0.from", "224.0.10.1")),
        {},
        "routes[0].from: 224.0.10.1 is not GROUP:PORT",
        "",
    ),
    (
        "from-port-range",
        edit(("routes.0.from", "224.0.10.1:70000")),
        {},
        "routes[0].from: 224.0.10.1:70000 is not GROUP:PORT",
        "1-65535",
    ),
    ("from-int", edit(("routes.0.from", 50000)), {}, "routes[0].from: 50000 is not GROUP:PORT", ""),
    ("to-missing", edit(("routes.0.to",)), {}, "routes[0].to: missing", ""),
    (
        "from-reserved",
        edit(("routes.0.from", "224.0.0.5:5000")),
        {},
        "routes[0].from: 224.0.0.5:5000 is in the reserved 224.0.0.0/24",
        "allow_reserved",
    ),
    (
        "all-hosts-even-allowed",
        edit(("routes.0.to", "224.0.0.1:5000"), ("routes.0.allow_reserved", True)),
        {},
        "routes[0].to: 224.0.0.1:5000 is used by the IP stack",
        "",
    ),
    (
        "to-is-from",
        routes((A, A)),
        {},
        "routes[0].to: 224.0.10.1:50000 is the same as routes[0].from",
        "",
    ),
    (
        "duplicate-from",
        routes((A, B), (A, C)),
        {},
        "routes[1].from: 224.0.10.1:50000 is already used by routes[0].from",
        "",
    ),
    (
        "loop-2",
        routes((A, B), (B, A)),
        {},
        "routes: 224.0.10.1:50000 -> 224.0.10.2:50000 -> 224.0.10.1:50000 is a forwarding loop",
        "routes[0] -> routes[1] -> routes[0]",
    ),
    (
        "loop-3",
        routes((C, A), (A, B), (B, C)),
        {},
        "routes: 239.1.1.1:6000 -> 224.0.10.1:50000 -> 224.0.10.2:50000 -> 239.1.1.1:6000 is a forwarding loop",
        "routes[0] -> routes[1] -> routes[2] -> routes[0]",
    ),
    (
        "name-long",
        edit(("routes.0.name", "a-very-long-route-name")),
        {},
        "routes[0].name: a-very-long-route-name is not a name",
        "1-16",
    ),
    (
        "name-space",
        edit(("routes.0.name", "my route")),
        {},
        "routes[0].name: my route is not a name",
        "",
    ),
    (
        "name-clash-default",
        edit(("routes", [{"from": A, "to": B, "name": "route1"}, {"from": C, "to": B}])),
        {},
        "routes[1].name: route1 (default) is already used by routes[0]",
        "",
    ),
    (
        "rate-high",
        edit(("routes.0.rate_pps", 100001)),
        {},
        "routes[0].rate_pps: 100001 is out of range",
        "",
    ),
    (
        "burst-zero",
        edit(("routes.0.burst", 0)),
        {},
        "routes[0].burst: 0 is out of range",
        "1-100000",
    ),
    (
        "allow-host-bits",
        edit(("routes.0.allow", ["10.0.0.1/8"])),
        {},
        "routes[0].allow[0]: 10.0.0.1/8 has host bits set",
        "allowed: 10.0.0.0/8",
    ),
    (
        "allow-prefix",
        edit(("routes.0.allow", ["10.0.0.0/33"])),
        {},
        "routes[0].allow[0]: 10.0.0.0/33 is not an address or CIDR block",
        "",
    ),
    (
        "allow-not-list",
        edit(("routes.0.allow", "10.0.0.0/8")),
        {},
        "routes[0].allow: 10.0.0.0/8 is not a list",
        "",
    ),
    (
        "allow-reserved-string",
        edit(("routes.0.allow_reserved", "yes")),
        {},
        "routes[0].allow_reserved: yes is not true or false",
        "",
    ),
    (
        "route-unknown",
        edit(("routes.0.ttl", 4)),
        {},
        "routes[0].ttl: unknown key",
        "allowed: from, to",
    ),
    (
        "too-many-routes",
        routes(("239.1.0.1:1", B), ("239.1.0.2:1", B), ("239.1.0.3:1", B), ("239.1.0.4:1", B)),
        {},
        "routes: 4 routes exceed the board's lwIP budget of 3 with a static IP "
        "(5 UDP sockets: 1 mDNS, 1 transmit, 3 receive)",
        "",
    ),
    (
        "too-many-routes-dhcp",
        dict(
            routes(("239.1.0.1:1", B), ("239.1.0.2:1", B), ("239.1.0.3:1", B)),
            network={"dhcp": True},
        ),
        {},
        "routes: 3 routes exceed the board's lwIP budget of 2 with DHCP "
        "(5 UDP sockets: 1 mDNS, 1 DHCP, 1 transmit, 2 receive)",
        "",
    ),
    (
        "igmp-budget",
        routes(*[("239.1.0.%d:1" % i, B) for i in range(1, 7)]),
        {"max_udp_sockets": 20},
        "routes: 7 multicast groups to join (discovery included) exceed",
        "6",
    ),
    (
        "from-discovery-port",
        edit(("routes.0.from", "224.0.10.1:50010")),
        {},
        "routes[0].from: 224.0.10.1:50010 uses the discovery port",
        "0.0.0.0:50010",
    ),
    (
        "to-discovery-group",
        edit(("routes.0.to", "239.255.10.1:50010")),
        {},
        "routes[0].to: 239.255.10.1:50010 is the discovery group",
        "",
    ),
    (
        "relay-datagram",
        edit(("relay", {"max_datagram": 9000})),
        {},
        "relay.max_datagram: 9000 is out of range",
        "1-8192",
    ),
    (
        "relay-watchdog",
        edit(("relay", {"watchdog_ms": 9000})),
        {},
        "relay.watchdog_ms: 9000 is out of range",
        "0-8388",
    ),
    ("relay-ttl", edit(("relay", {"ttl": 0})), {}, "relay.ttl: 0 is out of range", "1-255 or null"),
    (
        "relay-huge",
        edit(("relay", {"link_wait_s": 10**30})),
        {},
        "relay.link_wait_s: (huge number) is out of range",
        "",
    ),
    ("relay-unknown", edit(("relay", {"rate": 5})), {}, "relay.rate: unknown key", "rate_pps"),
    ("relay-not-object", edit(("relay", 5)), {}, "relay: 5 is not an object", ""),
    (
        "discovery-reserved",
        edit(("discovery", {"group": "224.0.0.251:5353"})),
        {},
        "discovery.group: 224.0.0.251:5353 is in the reserved 224.0.0.0/24",
        "",
    ),
    (
        "discovery-rate",
        edit(("discovery", {"replies_per_s": 0})),
        {},
        "discovery.replies_per_s: 0 is out of range",
        "1-100",
    ),
    (
        "discovery-enabled",
        edit(("discovery", {"enabled": "yes"})),
        {},
        "discovery.enabled: yes is not true or false",
        "",
    ),
    ("discovery-unknown", edit(("discovery", {"port": 1})), {}, "discovery.port: unknown key", ""),
]

# (id, config, kwargs, the normalized result must contain these)
GOOD_CASES = [
    ("default", GOOD, {}, NORMALIZED),
    ("dhcp", edit(("network", {"dhcp": True})), {}, {"network": {"dhcp": True}}),
    ("dhcp-false-static", edit(("network.dhcp", False)), {}, {"network": NORMALIZED["network"]}),
    ("nic-empty", edit(("nic", {})), {}, {"nic": NORMALIZED["nic"]}),
    ("intn-null", edit(("nic.intn", None)), {}, {"nic": dict(NORMALIZED["nic"], intn=None)}),
    (
        "spi1",
        edit(
            ("nic", {"spi": 1, "sck": 10, "mosi": 11, "miso": 12, "cs": 13, "rst": 14, "intn": 15})
        ),
        {},
        {},
    ),
    (
        "minimal-static",
        edit(("network", {"ip": "10.0.0.2", "netmask": "255.255.255.252"})),
        {},
        {
            "network": {
                "dhcp": False,
                "ip": "10.0.0.2",
                "netmask": "255.255.255.252",
                "gateway": "0.0.0.0",
                "dns": "0.0.0.0",
            }
        },
    ),
    ("three-routes-chain", routes((A, B), (B, C), ("239.9.9.9:1", A)), {}, {}),
    ("two-routes-dhcp", dict(routes((A, B), (B, C)), network={"dhcp": True}), {}, {}),
    ("reserved-allowed", routes(("224.0.0.5:5000", B), allow_reserved=True), {}, {}),
    (
        "discovery-off",
        dict(routes(("224.0.10.1:50010", B)), discovery={"enabled": False}),
        {},
        {"discovery": {"enabled": False, "group": "239.255.10.1:50010", "replies_per_s": 5}},
    ),
    (
        "route-options",
        routes((A, B), name="cam", rate_pps=0, allow=["10.0.0.0/8", "1.2.3.4"]),
        {},
        {
            "routes": [
                {
                    "from": A,
                    "to": B,
                    "name": "cam",
                    "rate_pps": 0,
                    "burst": 16,
                    "allow": ["10.0.0.0/8", "1.2.3.4"],
                    "allow_reserved": False,
                }
            ]
        },
    ),
    (
        "relay-rate-default",
        dict(routes((A, B)), relay={"rate_pps": 300, "ttl": 8}),
        {},
        {
            "routes": [dict(NORMALIZED["routes"][0], rate_pps=300, burst=30)],
            "relay": dict(NORMALIZED["relay"], ttl=8),
        },
    ),
    (
        "bench-budget",
        routes(*[("239.1.0.%d:1" % i, B) for i in range(1, 40)]),
        {"max_udp_sockets": 64, "max_igmp_groups": 64},
        {},
    ),
]


def _contains(big, small):
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    return big == small and type(big) is type(small)


@pytest.mark.parametrize("name, cfg, kw, start, part", BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_key_and_value(name, cfg, kw, start, part):
    got, errors = config.validate(cfg, **kw)
    assert got is None
    hits = [e for e in errors if e.startswith(start) and part in e]
    assert hits, "no error %r (containing %r) in %r" % (start, part, errors)


@pytest.mark.parametrize("name, cfg, kw, want", GOOD_CASES, ids=[g[0] for g in GOOD_CASES])
def test_good_config_normalizes(name, cfg, kw, want):
    got, errors = config.validate(cfg, **kw)
    assert errors == []
    assert _contains(got, want), got
    assert config.validate(got, **kw) == (got, [])
    _assert_shape(got)


def test_repo_config_json_is_the_full_default_shape():
    assert config.load(str(ROOT / "config.json")) == (NORMALIZED, [])


def test_every_error_not_just_the_first():
    cfg = edit(
        ("nic.sck", 5),
        ("network.ip", "1.2.3"),
        ("routes.0.to", "10.0.0.1:1"),
        ("relay", {"ttl": 300}),
        ("discovery", {"enabled": 1}),
        ("extra", 1),
    )
    _, errors = config.validate(cfg)
    assert [e.split(":")[0] for e in errors] == [
        "extra",
        "nic.sck",
        "network.ip",
        "routes[0].to",
        "relay.ttl",
        "discovery.enabled",
    ]


def test_output_is_fresh_and_input_untouched():
    cfg = copy.deepcopy(GOOD)
    got, _ = config.validate(cfg)
    assert cfg == GOOD
    got["nic"]["spi"] = 9
    got["relay"]["ttl"] = 9
    got["discovery"]["enabled"] = 9
    got["routes"][0]["allow"].append("x")
    assert config.validate(GOOD)[0] == NORMALIZED
    assert config.DEFAULTS["nic"]["spi"] == 0 and config.DEFAULTS["relay"]["rate_pps"] == 5000


def test_odd_python_values_never_raise():
    for v in (
        None,
        0,
        "",
        b"x",
        (1,),
        {1: 2},
        {"nic": object()},
        {(1, 2): 3},
        float("nan"),
        float("inf"),
        10**5000,
        {"routes": [{"from": {}, "to": []}] * 3},
        edit(("nic.cs", float("nan"))),
        edit(("relay", {"ttl": -(10**400)})),
    ):
        got, errors = config.validate(v)
        assert got is None and errors and all(isinstance(e, str) for e in errors)


# ---- load(): file problems are errors, never exceptions


def _load_files(tmp_path):
    """name -> (path, expected first error prefix or None for a good load)."""
    files = {
        "good": (json.dumps(GOOD), None),
        "bom": ("\ufeff" + json.dumps(GOOD), None),
        "bad-json": ('{"nic": {}, ', "not valid JSON ("),
        "not-utf8": (b'{"nic": "\xff"}', "not valid UTF-8"),
        "too-large": (" " * (config.MAX_FILE_BYTES + 1), "too large"),
        "bad-content": ('{"nic": 1}', None),
    }
    out = {}
    for name, (data, want) in files.items():
        p = tmp_path / (name + ".json")
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data, encoding="utf-8")
        out[name] = (str(p), want and "%s: %s" % (p, want))
    out["missing"] = (str(tmp_path / "nope.json"), "%s: not found" % (tmp_path / "nope.json"))
    out["directory"] = (str(tmp_path), "%s: cannot read" % tmp_path)
    return out


def _check_loads(results, files):
    for name, (_path, want) in files.items():
        cfg, errors = results[name]
        if name in ("good", "bom"):
            assert (cfg, errors) == (NORMALIZED, []), name
        elif name == "bad-content":
            assert cfg is None and errors[0].startswith("nic: 1 is not an object"), errors
        else:
            assert cfg is None and len(errors) == 1 and errors[0].startswith(want), (name, errors)


def test_load_reports_file_problems(tmp_path):
    files = _load_files(tmp_path)
    _check_loads({n: config.load(p) for n, (p, _) in files.items()}, files)


# ---- the same answers under the real MicroPython

# One JSON document a line each way, so MicroPython's small heap holds one case at a time.
MPY_SCRIPT = """
import json, config
src = open(%r)
dst = open(%r, "w")
for line in src:
    job = json.loads(line)
    if "load" in job:
        r = config.load(job["load"])
    else:
        r = config.validate(job["cfg"], **job["kw"])
    dst.write(json.dumps(r))
    dst.write("\\n")
src.close()
dst.close()
"""


def run_micropython(tmp_path, cases, loads=()):
    """Under MicroPython: validate() every [config, kwargs], then load() every path."""
    job, out = tmp_path / "job.jsonl", tmp_path / "out.jsonl"
    lines = [{"cfg": cfg, "kw": kw} for cfg, kw in cases] + [{"load": p} for p in loads]
    job.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
    )
    done = run_code(MPY_SCRIPT % (str(job), str(out)), path=(LIB,), timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # split on "\n" only: str.splitlines() would also split inside values at U+2028 etc.
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert len(got) == len(lines)
    return got[: len(cases)], got[len(cases) :]


def as_json(v):
    return json.loads(json.dumps(v))


def test_micropython_gives_the_same_answers(tmp_path):
    cases = [[c[1], c[2]] for c in BAD + GOOD_CASES]
    files = _load_files(tmp_path)
    mpy, mpy_loads = run_micropython(tmp_path, cases, [p for p, _ in files.values()])
    want = [as_json(config.validate(cfg, **kw)) for cfg, kw in cases]
    for case, m, w in zip(BAD + GOOD_CASES, mpy, want, strict=True):
        assert m == w, case[0]
    _check_loads({n: tuple(r) for n, r in zip(files, mpy_loads, strict=True)}, files)


# ---- generated configs

# Pieces of generated configs: valid variants (cheap to draw: one choice each) ...
NICS = [
    {},
    GOOD["nic"],
    {"intn": None},
    {"baudrate": 62500000, "sck": 2, "mosi": 3, "miso": 0, "cs": 1},
    {"spi": 1, "sck": 10, "mosi": 11, "miso": 12, "cs": 13, "rst": 14, "intn": 15},
]
NETWORKS = [
    {"dhcp": True},
    GOOD["network"],
    {"ip": "10.0.0.2", "netmask": "255.255.255.252"},
    {
        "dhcp": False,
        "ip": "172.16.5.9",
        "netmask": "255.240.0.0",
        "gateway": "172.16.0.1",
        "dns": "0.0.0.0",
    },
]
ROUTES = [  # distinct sources, none feeding another
    {"from": "239.0.1.%d:7000" % i, "to": "239.0.2.%d:7000" % (i % 3)} for i in range(6)
] + [
    {"from": "239.0.1.9:7000", "to": "239.0.2.1:7000", "name": "cam", "rate_pps": 0},
    {"from": "224.0.0.9:520", "to": "239.0.2.2:520", "allow_reserved": True, "burst": 1},
    {"from": "239.0.1.8:50000", "to": "239.0.2.2:50000", "allow": ["10.0.0.0/8", "1.2.3.4"]},
]
RELAYS = [
    {},
    {"ttl": 8},
    {"rate_pps": 0, "watchdog_ms": 8388, "stats_interval_s": 0},
    dict(NORMALIZED["relay"], ttl=255),
]
DISCOVERIES = [{}, {"enabled": False}, {"group": "239.9.9.9:4000", "replies_per_s": 100}]
# ... and the ingredients of wrong ones
GROUPS = [
    "224.0.10.1",
    "224.0.10.2",
    "239.255.10.1",
    "224.0.0.5",
    "224.0.0.1",
    "10.0.0.1",
    "224.0.10.01",
    "240.0.0.1",
]
PORTS = [50000, 50000, 5000, 50010, 0, 65536]
IPS = [
    "192.168.11.104",
    "192.168.11.1",
    "192.168.11.0",
    "192.168.11.255",
    "10.0.0.1",
    "127.0.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "8.8.8.8",
    "1.2.3",
    "01.2.3.4",
    "255.255.255.255",
]
MASKS = ["255.255.255.0", "255.255.0.0", "255.255.255.254", "0.0.0.0", "255.0.255.0"]
VALUES = (
    [
        0,
        1,
        -1,
        16,
        29,
        30,
        50,
        255,
        256,
        8388,
        8389,
        100000,
        62500000,
        62500001,
        True,
        False,
        None,
        "",
        "0",
        [],
        {},
        1.5,
        10**30,
    ]
    + IPS
    + MASKS
    + GROUPS
)
PATHS = [
    "nic",
    "nic.spi",
    "nic.baudrate",
    "nic.sck",
    "nic.mosi",
    "nic.miso",
    "nic.cs",
    "nic.rst",
    "nic.intn",
    "network",
    "network.dhcp",
    "network.ip",
    "network.netmask",
    "network.gateway",
    "network.dns",
    "routes",
    "routes.0",
    "routes.0.from",
    "routes.0.to",
    "routes.1.from",
    "routes.0.name",
    "routes.0.rate_pps",
    "routes.0.burst",
    "routes.0.allow",
    "routes.0.allow.0",
    "routes.0.allow_reserved",
    "relay",
    "relay.ttl",
    "relay.max_datagram",
    "relay.rate_pps",
    "discovery",
    "discovery.group",
    "discovery.enabled",
    "bogus",
]
TOP_UNKNOWN = re.compile(r".*: unknown key \(allowed: nic, network, routes, relay, discovery\)")
KEY_PATH = re.compile(r"(nic|network|routes|relay|discovery|config)([.:\[]|$)")


def strategies(mpy_safe):
    """(near-valid configs, arbitrary JSON). mpy_safe: only values that JSON carries
    to MicroPython unchanged (no NaN/inf, simple floats, no surrogate characters)."""
    if mpy_safe:
        floats = st.sampled_from([0.5, -1.5, 20000000.0, 1e20, 3.25])
        text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
    else:
        floats = st.floats()
        text = st.text(max_size=12)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | floats
        | text
        | st.sampled_from([10**30, -(10**30), 62500000, 20000000])
    )
    # two levels of nesting: validate() never descends further into a value
    nest = st.lists(scalars, max_size=3) | st.dictionaries(text, scalars, max_size=3)
    anything = (
        scalars
        | nest
        | st.lists(scalars | nest, max_size=3)
        | st.dictionaries(text, scalars | nest, max_size=3)
    )
    endpoint = st.builds("{}:{}".format, st.sampled_from(GROUPS), st.sampled_from(PORTS))
    messy_route = st.fixed_dictionaries(
        {"from": endpoint, "to": endpoint},
        optional={
            "name": st.sampled_from(["a", "route0", "route1", "x y", "b" * 17]),
            "rate_pps": st.sampled_from(VALUES),
            "allow": st.lists(
                st.sampled_from(IPS + ["10.0.0.0/8", "10.0.0.1/8", "1.2.3.4/33"]), max_size=2
            ),
            "allow_reserved": st.booleans(),
        },
    )
    good_routes = st.lists(
        st.sampled_from(ROUTES), min_size=1, max_size=3, unique_by=lambda r: r["from"]
    )
    messy_routes = st.lists(messy_route, min_size=1, max_size=4)
    messy_network = st.fixed_dictionaries(
        {"ip": st.sampled_from(IPS), "netmask": st.sampled_from(MASKS)},
        optional={"gateway": st.sampled_from(IPS), "dhcp": st.booleans()},
    )
    value = st.sampled_from(VALUES) | anything

    @st.composite
    def near_valid(draw):
        # mostly valid pieces, so that about a third of these configs pass
        tidy = draw(st.sampled_from([(1, 1), (1, 1), (1, 1), (1, 0), (0, 1), (0, 0)]))
        cfg = {
            "nic": dict(draw(st.sampled_from(NICS))),
            "network": dict(draw(st.sampled_from(NETWORKS) if tidy[0] else messy_network)),
            "routes": copy.deepcopy(draw(good_routes if tidy[1] else messy_routes)),
        }
        for key, pool in (("relay", RELAYS), ("discovery", DISCOVERIES)):
            extra = draw(st.sampled_from(pool + [None]))
            if extra is not None:
                cfg[key] = dict(extra)
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
            node, key = _find(cfg, draw(st.sampled_from(PATHS)))
            if isinstance(node, dict) and draw(st.integers(0, 3)) == 0:
                node.pop(key, None)
            elif node is not None:
                node[key] = draw(value)
        return cfg

    return near_valid(), anything


def _find(cfg, path):
    """(container, key) for a dotted path in cfg, or (None, None) if it is not there."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = cfg
    for p in parents + [None]:
        ok_dict = isinstance(node, dict) and isinstance(last if p is None else p, str)
        ok_list = isinstance(node, list) and isinstance(last if p is None else p, int)
        if ok_list and (last if p is None else p) >= len(node):
            ok_list = False
        if not (ok_dict or ok_list):
            return None, None
        if p is None:
            return node, last
        node = node.get(p) if ok_dict else node[p]
    return None, None


def _assert_shape(cfg):
    assert set(cfg) == set(NORMALIZED)
    for k, keys in SHAPE.items():
        if k == "network" and cfg[k] == {"dhcp": True}:
            continue
        assert set(cfg[k]) == keys, k
    assert cfg["routes"] and all(set(r) == ROUTE_SHAPE for r in cfg["routes"])
    json.dumps(cfg, allow_nan=False)


def _check_result(x, result, kw=None):
    cfg, errors = result
    assert isinstance(errors, list)
    if not errors:
        _assert_shape(cfg)
        assert config.validate(cfg, **(kw or {})) == (cfg, [])
        return
    assert cfg is None
    for e in errors:
        assert isinstance(e, str) and "\n" not in e
        assert KEY_PATH.match(e) or TOP_UNKNOWN.fullmatch(e), (e, x)
        assert not e.startswith("config: internal error"), (e, x)


NEAR, ANY = strategies(mpy_safe=False)


@settings(max_examples=10000, deadline=None, suppress_health_check=list(HealthCheck))
@given(NEAR | ANY)
def test_generated_configs_never_raise(x):
    before = json.dumps(x, sort_keys=True)
    result = config.validate(x)
    assert json.dumps(x, sort_keys=True) == before, "validate() changed its input"
    _check_result(x, result)


def test_generated_configs_are_both_valid_and_invalid():
    # the generator above exercises both paths of validate(): about a third valid
    seen = {"valid": 0, "invalid": 0}

    @settings(max_examples=2000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(NEAR | ANY)
    def draw(x):
        seen["valid" if not config.validate(x)[1] else "invalid"] += 1

    draw()
    assert seen["valid"] > 100 and seen["invalid"] > 600, seen


def test_micropython_matches_cpython_on_generated_configs(tmp_path):
    near, anything = strategies(mpy_safe=True)
    cases = []

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(near | anything, st.sampled_from([{}, {}, {}, {"max_udp_sockets": 8}]))
    def collect(x, kw):
        cases.append([x, kw])

    collect()
    assert len(cases) >= 300
    mpy, _ = run_micropython(tmp_path, cases)
    for (x, kw), m in zip(cases, mpy, strict=True):
        want = as_json(config.validate(x, **kw))
        assert m == want, x
        _check_result(x, config.validate(x, **kw), kw)
