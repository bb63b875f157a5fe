"""The firmware files themselves: compile with mpy-cross, refuse bad configs
clearly without a traceback, stop cleanly on Ctrl-C leaving `relay`."""

import copy
import json
import time

import pytest

from host_tests.conftest import require_namespaces
from host_tests.twinlan import (
    load_default_config,
    start_board,
    wait_running,
)
from tools import fw
from tools.twin import mpy
from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP
from tools.twin.runner import Board


def test_every_device_file_compiles_with_mpy_cross_to_v6_bytecode(tmp_path):
    """The one mpy-cross test: lib/ through deploy's own compile step (fw.compile_lib),
    boot.py and main.py too (they stay source on the board, but must compile)."""
    text, ver = fw.mpy_cross_version()
    assert ver == (6, 3), text  # what MicroPython 1.28/1.29 load
    done = fw.compile_lib(tmp_path / "lib")
    assert sorted(d.name for _, d in done) == sorted(
        p.stem + ".mpy" for p in (mpy.ROOT / "lib").glob("*.py"))
    done += fw.compile_lib(tmp_path, [mpy.ROOT / f for f in fw.FIRMWARE_FILES])
    for _, d in done:
        assert fw.mpy_header(d.read_bytes()) == (6, 0), d  # bytecode: no arch, any v6 loader
    assert fw.decode_sys_mpy(2822) == (6, 3)  # the unix port's sys.implementation._mpy


def _bad(mutate):
    cfg = load_default_config()
    mutate(cfg)
    return cfg


def _set(path, value):
    def f(cfg):
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return f


# (what is wrong, the config mutation, text that must appear in the message)
BAD = [
    ("sck not an SCK pin", _set(["nic", "sck"], 5), ["nic.sck", "5"]),
    ("spi bus 2", _set(["nic", "spi"], 2), ["nic.spi", "2"]),
    ("pin out of range", _set(["nic", "cs"], 40), ["nic.cs", "40"]),
    ("baudrate string", _set(["nic", "baudrate"], "fast"), ["nic.baudrate", "fast"]),
    ("bad ip", _set(["network", "ip"], "192.168.11.300"), ["network.ip", "192.168.11.300"]),
    ("netmask holes", _set(["network", "netmask"], "255.0.255.0"),
     ["network.netmask", "255.0.255.0"]),
    ("gateway outside", _set(["network", "gateway"], "10.0.0.1"), ["network.gateway", "10.0.0.1"]),
    ("to not multicast", _set(["routes", 0, "to"], "10.1.2.3:50000"),
     ["routes[0].to", "10.1.2.3:50000"]),
    ("port zero", _set(["routes", 0, "from"], "224.0.10.1:0"), ["routes[0].from", "224.0.10.1:0"]),
    ("no port", _set(["routes", 0, "from"], "224.0.10.1"), ["routes[0].from", "224.0.10.1"]),
    ("reserved group", _set(["routes", 0, "to"], "224.0.0.5:50000"),
     ["routes[0].to", "224.0.0.5:50000"]),
    ("to equals from", _set(["routes", 0, "to"], "224.0.10.1:50000"),
     ["routes[0]", "224.0.10.1:50000"]),
    ("unknown key", _set(["nic", "mosl"], 19), ["nic.mosl"]),
    ("routes empty", _set(["routes"], []), ["routes"]),
    ("cycle", _set(["routes"], [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"},
                                {"from": "224.0.10.2:50000", "to": "224.0.10.1:50000"}]),
     ["routes", "224.0.10.1:50000", "224.0.10.2:50000"]),
    ("duplicate from", _set(["routes"], [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"},
                                         {"from": "224.0.10.1:50000", "to": "224.0.10.3:50000"}]),
     ["routes[1].from", "224.0.10.1:50000"]),
    ("too many routes", _set(["routes"], [{"from": "224.0.10.%d:50000" % i,
                                           "to": "224.0.11.%d:50000" % i} for i in range(1, 5)]),
     ["routes", "4"]),
    ("watchdog too long", lambda c: c.update(relay={"watchdog_ms": 9000}),
     ["relay.watchdog_ms", "9000"]),
    ("max datagram", lambda c: c.update(relay={"max_datagram": 0}), ["relay.max_datagram", "0"]),
]


@pytest.fixture
def isolated():
    """Boards without a LAN still run in a private namespace."""
    require_namespaces()


@pytest.mark.parametrize("what,mutate,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_config_named_clearly_without_traceback(what, mutate, needles, isolated):
    cfg = _bad(mutate)
    with Board(None, cfg) as b:
        b.proc.wait(30)
        time.sleep(0.1)
        out = b.output()
    assert "Traceback" not in out, out
    assert "relay not started" in out, out
    msgs = [line for line in out.splitlines() if line.startswith("  ")]
    assert any(all(n in m for n in needles) for m in msgs), out
    assert b.proc.returncode == 0, out


def test_invalid_json_is_reported(tmp_path, isolated):
    with Board(None, '{"nic": {"spi": 0,, }') as b:
        b.proc.wait(30)
        time.sleep(0.1)
        out = b.output()
    assert "Traceback" not in out and "config.json" in out and "relay not started" in out, out


def test_ctrl_c_leaves_relay_at_the_repl_and_leaves_groups(lan):
    board_host = lan.add_host("board", BOARD_IP)
    lan.add_host("pc1", SENDER_IP)
    lan.add_host("pc2", LISTENER_IP)
    lan.query()
    cfg = load_default_config()
    b = start_board(board_host, copy.deepcopy(cfg), repl=True)
    try:
        wait_running(b)
        assert lan.wait_mdb(("board", "224.0.10.1"), present=True)
        b.interrupt()
        b.wait_for("relay: stopped", timeout=10)
        assert lan.wait_mdb(("board", "224.0.10.1"), present=False), lan.mdb()
        n = len(b.lines)
        b.send("import json; print('STATS', json.dumps(relay.stats()))\n")
        line = b.wait_for("STATS {", timeout=10, start=n)
        stats = json.loads(line[line.index("{"):])
        assert stats["routes"][0]["from"] == "224.0.10.1:50000"
        assert stats["routes"][0]["rx"] == 0
    finally:
        b.stop()
