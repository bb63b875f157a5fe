"""send / listen / probe / sim on the private LAN (network namespaces)."""

import json
import re
import subprocess
import sys
import time

from host_tests.conftest import require_namespaces
from host_tests.twinlan import (
    BOARD_IP,
    LISTENER_IP,
    SENDER_IP,
    running_board,
)
from tools import fw

PY = sys.executable


def tools_in(host, *argv, timeout=90):
    return host.run([PY, "-m", "tools", *argv], capture_output=True, text=True, cwd=fw.ROOT,
                    timeout=timeout)




def test_send_listen_across_the_lan(net):
    lan, _, pc1, pc2 = net
    lst = pc2.popen([PY, "-m", "tools", "listen", "-g", "239.255.10.7:40000", "--iface",
                     LISTENER_IP, "--json", "--count", "50", "--duration", "20"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=fw.ROOT)
    assert json.loads(lst.stdout.readline())["event"] == "ready"
    time.sleep(0.3)  # the switch learns the join
    p = tools_in(pc1, "send", "-g", "239.255.10.7:40000", "--iface", SENDER_IP, "--count", "50",
                 "--rate", "500", "--size", "300", "--ttl", "1", "--json")
    assert p.returncode == 0, p.stderr
    sent = json.loads(p.stdout.splitlines()[-1])
    assert sent["sent"] == 50 and sent["size"] == 300
    out, err = lst.communicate(timeout=20)
    events = [json.loads(line) for line in out.splitlines()]
    grams = [e for e in events if e["event"] == "datagram"]
    assert [g["seq"] for g in grams] == list(range(50))
    assert {g["src"] for g in grams} == {SENDER_IP} and {g["len"] for g in grams} == {300}
    summ = events[-1]["groups"][0]
    assert (summ["unique"], summ["lost"], summ["duplicates"], summ["reordered"]) == (50, 0, 0, 0)
    assert summ["streams"][0]["stream"] == sent["streams"][0]


def test_probe_through_the_simulated_board(net):
    lan, bhost, pc1, _ = net
    with running_board(bhost) as board:
        p = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "600", "--rate", "300",
                     "--size", "400", "--json")
        board.wait_for("route0 rx 600 tx 600", timeout=5)  # the board counted each one
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert (r["from"], r["to"]) == ("224.0.10.1:50000", "224.0.10.2:50000")  # config.json
    assert (r["sent"], r["unique"], r["lost"], r["duplicates"], r["reordered"]) == (600, 600, 0,
                                                                                     0, 0)
    assert r["via"] == {BOARD_IP: 600}
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r["rate_pps"] > 200 and r["mbit_s"] > 0.5


def test_probe_counts_injected_loss_duplicates_reordering(net):
    lan, bhost, pc1, _ = net
    relay = bhost.popen([PY, "-m", "host_tests.fake_relay", "224.0.10.1:50000",
                         "224.0.10.2:50000", BOARD_IP], stdout=subprocess.PIPE, text=True,
                        cwd=fw.ROOT)
    assert relay.stdout.readline().strip() == "ready"
    p = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "100", "--rate", "200", "--json")
    relay.kill()
    assert p.returncode == 1  # loss above --max-loss 0
    r = json.loads(p.stdout)
    # Same figures as the analyzer test, now end to end through sockets and a switch.
    assert (r["sent"], r["lost"], r["duplicates"], r["reordered"]) == (100, 10, 13, 40)
    assert (r["unique"], r["received"], r["loss_pct"]) == (90, 103, 10.0)
    assert r["via"] == {BOARD_IP: 103}
    text = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "20", "--rate", "200",
                    "--max-loss", "100")
    assert text.returncode == 0  # nothing forwards now, but 100 % is tolerated
    assert "lost 20 (100.00%)" in text.stdout


def test_sim_command_summary_line():
    require_namespaces()
    t0 = time.monotonic()
    p = subprocess.run([PY, "-m", "tools", "sim", "--duration", "2", "--rate", "150"],
                       capture_output=True, text=True, cwd=fw.ROOT, timeout=120)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    m = re.fullmatch(r"sim: sent (\d+), forwarded (\d+), received (\d+), loss 0\.00% "
                     r"\(route0 224\.0\.10\.1:50000 -> 224\.0\.10\.2:50000\)", lines[-1])
    assert m, lines[-1]
    sent, fwd, got = map(int, m.groups())
    assert 250 <= sent <= 350 and fwd == sent == got
    assert any(ln.startswith("board | stats up") for ln in lines)  # live stats
    assert any(ln.startswith("traffic | ") for ln in lines)
    assert any("| IP 198.18.0.10/15" in ln for ln in lines)  # address moved into the twin LAN
    assert took < 30


def test_sim_unix_personality_two_routes_dhcp(tmp_path):
    require_namespaces()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({
        "nic": {}, "network": {"dhcp": True},
        "routes": [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"},
                   {"from": "239.255.10.3:6000", "to": "239.255.10.4:6001", "name": "b"}]}))
    p = subprocess.run([PY, "-m", "tools", "sim", "--config", str(cfg), "--personality", "unix",
                        "--duration", "1.5", "--rate", "100", "--quiet", "--json"],
                       capture_output=True, text=True, cwd=fw.ROOT, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout.strip().splitlines()
    assert len(out) == 2 and out[0].startswith("sim: sent ")  # --quiet: summary only
    assert "b 239.255.10.3:6000 -> 239.255.10.4:6001" in out[0]
    d = json.loads(out[1])
    assert d["loss_pct"] == 0 and d["sent"] == d["forwarded"] == d["received"] > 0
    assert set(d["routes"]) == {"route0", "b"}


def test_sim_refuses_a_bad_config(tmp_path):
    require_namespaces()  # sim says it cannot build its LAN before it reads the config
    cfg = tmp_path / "config.json"
    cfg.write_text('{"nic": {}, "network": {"dhcp": true}, "routes": []}')
    p = subprocess.run([PY, "-m", "tools", "sim", "--config", str(cfg)], capture_output=True,
                       text=True, cwd=fw.ROOT, timeout=60)
    assert p.returncode == 1
    assert "routes" in p.stderr and "Traceback" not in p.stderr


def test_sim_without_namespaces_says_why(monkeypatch, capsys):
    import tools.twin.lan as lanmod
    from tools import sim

    monkeypatch.setattr(lanmod, "namespaces_available",
                        lambda *a: (False, "`ip netns` needs root (CAP_SYS_ADMIN)"))
    parser = __import__("tools.cli", fromlist=["build_parser"]).build_parser()
    args = parser.parse_args(["sim"])
    assert sim.run(args) == 2
    err = capsys.readouterr().err
    assert "cannot build the private LAN: `ip netns` needs root" in err
