"""Host tools without a network: CLI wiring, check, the traffic analyzer,
board overlays, boot-log parsing, package.json and the freeze manifest."""

import json
import os
import subprocess
import sys

import pytest

from tools import boardlink, cli, fw, stream

REPO = fw.ROOT


def tools(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "tools", *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=60, **kw)


# -- the command line (host_tests/test_cli.py walks every subcommand) ----------------------
def test_version_from_lib():
    assert tools("--version").stdout.strip() == "mcast-relay tools %s" % fw.version()


# -- check ------------------------------------------------------------------------------------
def test_check_default_config_ok():
    p = tools("check")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "OK, 1 route(s)" in p.stdout
    assert "route0 224.0.10.1:50000 -> 224.0.10.2:50000" in p.stdout
    assert "INTN GP21" in p.stdout


def test_check_lists_every_error(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({
        "nic": {"spi": 2, "sck": 5},
        "network": {"ip": "1.2.3", "netmask": "255.0.255.0"},
        "routes": [{"from": "10.0.0.1:5", "to": "224.0.10.1:70000"}],
        "relai": {},
    }))
    p = tools("check", str(bad))
    assert p.returncode == 1
    lines = [ln.strip() for ln in p.stdout.splitlines()[1:]]
    assert len(lines) >= 5
    for key in ("relai", "nic.spi", "network.ip", "network.netmask", "routes[0].from",
                "routes[0].to"):
        assert any(ln.startswith(key) for ln in lines), (key, p.stdout)
    assert "Traceback" not in p.stdout + p.stderr


def test_check_bad_json_and_missing_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text("{")
    p = tools("check", str(f))
    assert p.returncode == 1 and "not valid JSON" in p.stdout
    p = tools("check", str(tmp_path / "nope.json"))
    assert p.returncode == 1 and "not found" in p.stdout


def test_check_json_prints_normalized(tmp_path):
    p = tools("check", "--json")
    cfg = json.loads(p.stdout)
    assert cfg["routes"][0]["name"] == "route0"
    assert cfg["relay"]["max_datagram"] == 1472


def test_check_boards_overlays(tmp_path):
    boards = tmp_path / "boards.json"
    boards.write_text(json.dumps({
        "_comment": "keys are machine.unique_id() in hex",
        "e661410403000001": {"network": {"ip": "192.168.11.105", "netmask": "255.255.255.0",
                                         "gateway": "192.168.11.1", "dns": "8.8.8.8"}},
        "e661410403000002": {"network": {"dhcp": True}, "relay": {"stats_interval_s": 5}},
        "e661410403000003": {"relay": {"watchdog_ms": 99999}},
    }))
    p = tools("check", "--boards", str(boards))
    assert p.returncode == 1
    assert "[e661410403000003]" in p.stdout and "relay.watchdog_ms" in p.stdout
    assert "[e661410403000002]: OK" in p.stdout


# -- overlays -------------------------------------------------------------------------------
def test_merge_replaces_network_and_routes_merges_the_rest():
    base = json.loads((REPO / "config.json").read_text())
    out = fw.merge(base, {"network": {"dhcp": True}, "relay": {"ttl": 4},
                          "nic": {"intn": None}})
    assert out["network"] == {"dhcp": True}
    assert out["nic"]["intn"] is None and out["nic"]["cs"] == 17
    assert out["relay"] == {"ttl": 4}
    assert base["nic"]["intn"] == 21  # the base is not modified
    cfg, errors = fw.validate(out)
    assert not errors, errors


def test_overlay_keys_must_be_unique_ids(tmp_path):
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"E6614104030000AA": {}, "board-1": {}, "abcd": 3}))
    ov, errors = fw.load_overlays(f)
    assert list(ov) == ["e6614104030000aa"]
    assert len(errors) == 2


# -- payloads and the analyzer ------------------------------------------------------------------
def test_payload_round_trip_and_padding():
    p = stream.make_payload(0xDEADBEEF, 12345, 200, sent_ns=42)
    assert len(p) == 200
    assert stream.parse_payload(p) == (0xDEADBEEF, 12345, 42)
    assert stream.parse_payload(b"hello world, this is not ours") is None
    assert len(stream.make_payload(1, 2, 10)) == stream.HEADER_SIZE


@pytest.mark.parametrize("text", ["224.0.10.1", "10.0.0.1:5", "224.0.10.1:0", "224.1:5",
                                  "224.0.10.1:x", ":5"])
def test_parse_endpoint_rejects(text):
    with pytest.raises(ValueError):
        stream.parse_endpoint(text)


def faulty(n):
    """The injected faults of the fake relay: drop every 10th (seq % 10 == 9),
    duplicate every 7th (seq % 7 == 6), swap each pair (2k+1 before 2k)."""
    out, held = [], None
    for s in range(n):
        copies = [] if s % 10 == 9 else ([s, s] if s % 7 == 6 else [s])
        if s % 2 == 0:
            if held is not None:
                out += held
            held = copies
        else:
            out += copies
            if held is not None:
                out += held
                held = None
    if held is not None:
        out += held
    return out


def test_analyzer_counts_injected_faults():
    seqs = faulty(100)
    a = stream.Analyzer(expected=100)
    for i, s in enumerate(seqs):
        a.add(s, 1000 * i, 1000 * i + 500_000 + s * 1000, 64, "198.18.0.10")
    r = a.summary()
    # by hand: 10 dropped (9, 19, ... 99); 14 multiples-of-7-minus-1 below 100, one of them
    # (69) dropped: 13 duplicates; 50 pairs, 10 of them lost their odd member: 40 swapped.
    assert r["lost"] == 10
    assert r["duplicates"] == 13
    assert r["reordered"] == 40
    assert r["unique"] == 90 and r["received"] == 103
    assert r["loss_pct"] == 10.0
    assert r["latency_ms"]["min"] == 0.5 and r["latency_ms"]["max"] == 0.598
    assert r["sources"] == {"198.18.0.10": 103}


def test_analyzer_without_expected_uses_the_span():
    a = stream.Analyzer()
    for s in [100, 101, 103, 102, 104, 104]:
        a.add(s, 0, 1, 10)
    r = a.summary()
    assert (r["expected"], r["lost"], r["duplicates"], r["reordered"]) == (5, 0, 1, 1)
    assert (r["first_seq"], r["last_seq"]) == (100, 104)


def test_percentiles_nearest_rank():
    v = list(range(1, 101))
    assert stream.percentile(v, 50) == 50
    assert stream.percentile(v, 90) == 90
    assert stream.percentile(v, 99) == 99
    assert stream.percentile(v, 100) == 100
    assert stream.percentile([7], 99) == 7
    assert stream.percentile([], 50) is None


def test_pacer_paces():
    import time

    p = stream.Pacer(1000)
    n = 0
    t0 = time.perf_counter()
    while n < 200:
        while n < p.due() and n < 200:
            n += 1
        p.sleep_until(n)
    assert 0.15 <= time.perf_counter() - t0 <= 0.6


# -- boot log ---------------------------------------------------------------------------------
STATUS = ("mcast-relay 0.1.0 | MicroPython 1.29.0 | WIZNET5K SPI0 20.0 MHz INTN GP21 | "
          "MAC 02:08:dc:00:00:01 | IP 192.168.11.104/24 gw 192.168.11.1 (static) | link up | "
          "ttl: port default (255 on the board)")


def test_boot_log_parsing():
    b = boardlink.Boot()
    for line in ["mcast-relay 0.1.0 booting (reset cause: power-on)",
                 "relay starting: Ctrl-C within 1 s skips it", STATUS,
                 "relay: 2 route(s): route0 224.0.10.1:50000 -> 224.0.10.2:50000, "
                 "b 239.1.2.3:5000 -> 239.1.2.4:5001"]:
        b.feed(line)
    assert b.ok
    assert b.status["ip"] == "192.168.11.104" and b.status["link"] == "up"
    assert b.intn() == 21
    assert b.routes == [("route0", "224.0.10.1:50000", "224.0.10.2:50000"),
                        ("b", "239.1.2.3:5000", "239.1.2.4:5001")]
    nointn = boardlink.Boot()
    nointn.feed(STATUS.replace("INTN GP21", "no INTN: polled every 64 ms"))
    assert nointn.ok and nointn.intn() is None


def test_boot_log_fatal():
    b = boardlink.Boot()
    b.feed("config.json: 2 error(s), the relay will not use it:")
    b.feed("relay not started: fix config.json and reset; the REPL is yours")
    assert not b.ok and "error(s)" in b.fatal


def test_stats_line_parsing():
    line = ("stats up 3s link up flaps 0 | route0 rx 590 tx 588 bytes 118000 drop 2 (big 0 "
            "empty 0 own 0 rate 2 src 0 err 0) | r1 rx 5 tx 5 bytes 50 drop 0 (big 0 empty 0 own "
            "0 rate 0 src 1 err 0) | mem free 901536")
    st = boardlink.parse_stats(line)
    assert (st["uptime_s"], st["link"], st["flaps"], st["mem_free"]) == (3, "up", 0, 901536)
    assert st["routes"]["route0"] == {"rx": 590, "tx": 588, "bytes": 118000, "drop": 2, "big": 0,
                                      "empty": 0, "own": 0, "rate": 2, "src": 0, "err": 0,
                                      "rx_pps": None, "tx_pps": None, "drop_pps": None}
    assert st["routes"]["r1"]["src"] == 1
    # the rates of a relay that prints them
    rated = boardlink.parse_stats(line.replace("err 0) | r1", "err 0) rx/s 197 tx/s 196 drop/s 1 | r1"))
    assert (rated["routes"]["route0"]["rx_pps"], rated["routes"]["route0"]["tx_pps"],
            rated["routes"]["route0"]["drop_pps"]) == (197, 196, 1)
    assert rated["routes"]["r1"]["rx_pps"] is None
    # a route may say more after that (one day): still parsed
    more = line.replace("err 0) | r1", "err 0) 12/s | r1")
    assert boardlink.parse_stats(more)["routes"] == st["routes"]
    # the stall count (older relays have none)
    assert st["stalls"] is None
    stalled = boardlink.parse_stats(line.replace("flaps 0 |", "flaps 0 stalls 2 |"))
    assert (stalled["flaps"], stalled["stalls"], stalled["routes"]) == (0, 2, st["routes"])
    assert boardlink.parse_stats("relay: link DOWN") is None


# -- what is shipped ----------------------------------------------------------------------------
def test_package_json_lists_every_lib_module_and_the_version():
    pkg = json.loads((REPO / "package.json").read_text())
    names = sorted(p.name for p in (REPO / "lib").glob("*.py"))
    assert sorted(u[0] for u in pkg["urls"]) == names, \
        "package.json is stale: python -c 'from tools import fw; fw.write_package_json()'"
    for dest, src in pkg["urls"]:
        assert src == "lib/" + dest and (REPO / src).exists()
    assert pkg["version"] == fw.version()
    assert (REPO / "package.json").read_text() == fw.package_json_text()


def test_freeze_manifest_freezes_every_lib_module():
    calls = {"module": [], "include": [], "metadata": {}}
    g = {
        "module": lambda path, base_path=".", opt=None: calls["module"].append((path, base_path)),
        "include": lambda path, **kw: calls["include"].append(path),
        "metadata": lambda **kw: calls["metadata"].update(kw),
    }
    here = os.getcwd()
    os.chdir(REPO / "firmware")  # MicroPython's build runs a manifest from its own folder
    try:
        exec((REPO / "firmware" / "manifest.py").read_text(), g)
    finally:
        os.chdir(here)
    names = sorted(p.name for p in (REPO / "lib").glob("*.py"))
    assert calls["module"] == [(n, "../lib") for n in names]
    assert calls["include"] == ["$(PORT_DIR)/boards/manifest.py"]
    assert calls["metadata"]["version"] == fw.version()


def test_docs_cover_every_command_and_option():
    """docs/tools.md documents each of these commands' options (the README links to it)."""
    import argparse

    doc = (REPO / "docs" / "tools.md").read_text()
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:  # every command, `top` and `status` included
        assert "python -m tools %s" % name in doc, name
        for action in sub.choices[name]._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert "`%s" % opt in doc or "%s " % opt in doc, (name, opt)
