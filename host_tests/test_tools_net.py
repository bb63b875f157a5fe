"""send / listen / probe / sim on the private LAN (network namespaces)."""

import json
import re
import subprocess
import sys
import time

from host_tests.conftest import require_namespaces
from host_tests.twinlan import running_board
from tools import fw
from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP

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
    assert p.returncode == 1  # loss above --max-loss
    r = json.loads(p.stdout)
    # Same figures as the analyzer test, now end to end through sockets and a switch.
    assert (r["sent"], r["lost"], r["duplicates"], r["reordered"]) == (100, 10, 13, 40)
    assert (r["unique"], r["received"], r["loss_pct"]) == (90, 103, 10.0)
    assert r["via"] == {BOARD_IP: 103}
    text = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "20", "--rate", "200",
                    "--max-loss", "100")
    assert text.returncode == 0  # nothing forwards now, but 100 % is tolerated
    assert "lost 20 (100.00%)" in text.stdout
    # no board answers the discovery query (the fake relay has no responder): the probe says
    # why it cannot tell where the loss happened
    assert "where the 20 lost went is not known: no board forwarding 224.0.10.1:50000 -> " \
           "224.0.10.2:50000 answered the discovery query on 239.255.10.1:50010" in text.stdout


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


def sim_json(*argv):
    p = subprocess.run([PY, "-m", "tools", "sim", "--quiet", "--json", *argv],
                       capture_output=True, text=True, cwd=fw.ROOT, timeout=120)
    lines = p.stdout.strip().splitlines()
    summary = json.loads(next(ln for ln in lines if ln.startswith("{")))
    return p, lines, summary


def assert_adds_up(d):
    s = d["loss_split"]
    assert s["lost"] == d["sent"] - d["received"]
    assert s["before_board"] + s["at_board"] + s["after_board"] + s["unknown"] == s["lost"]
    assert sum(s["guards"].values()) == s["at_board"]
    return s


def test_sim_explains_a_loss_to_the_size_guard():
    require_namespaces()
    p, lines, d = sim_json("--duration", "1", "--rate", "200", "--size", "1500")
    assert p.returncode == 1 and d["received"] == 0  # every datagram over max_datagram 1472
    s = assert_adds_up(d)
    assert s["guards"]["big"] == s["at_board"] == d["sent"] == d["routes"]["route0"]["big"]
    assert s["before_board"] == s["after_board"] == s["unknown"] == 0
    assert "where the %d lost went: 0 before the board's socket (never read by the relay), %d "\
           "refused by the board (big %d: longer than relay.max_datagram)" % (
               d["sent"], d["sent"], d["sent"]) in p.stdout


def test_sim_as_fast_as_it_can_explains_the_rate_cap():
    require_namespaces()
    p, lines, d = sim_json("--duration", "1", "--rate", "0")
    s = assert_adds_up(d)
    assert s["unknown"] == 0
    assert s["guards"]["rate"] == d["routes"]["route0"]["rate"] > 0  # over the 5000/s cap
    assert "rate %d: over the route's rate_pps cap" % s["guards"]["rate"] in p.stdout
    if s["before_board"]:  # faster than this host runs the relay: the socket's 4 datagrams
        assert "sim: before the board's socket: the board's socket holds 4 datagrams" in p.stdout


def test_sim_stops_quietly_when_its_reader_goes_away():
    require_namespaces()
    from tools.twin.lan import DEFAULT_PREFIX

    p = subprocess.Popen([PY, "-m", "tools", "sim", "--duration", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=fw.ROOT)
    first = p.stdout.readline()
    assert first.startswith("sim: firmware")
    own = "%s%dx" % (DEFAULT_PREFIX, p.pid)  # the namespaces this run makes
    p.stdout.close()  # `sim | head -1`
    assert p.wait(60) == 1
    err = p.stderr.read()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert own not in left


def test_sim_serve_prints_the_commands_that_reach_the_board():
    require_namespaces()
    import shlex
    import signal

    p = subprocess.Popen([PY, "-m", "tools", "sim", "--serve"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=fw.ROOT)
    lines = []
    try:
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("sim: serving until Ctrl-C"):
                break
        commands = {}
        for comment, command in zip(lines, lines[1:], strict=False):
            if comment.startswith("  # ") and command.startswith("  ip netns exec "):
                commands[command.split(" -m tools ")[1].split()[0]] = shlex.split(command)
        assert {"probe", "discover", "status", "top", "send", "listen"} <= set(commands), lines
        names = lines[[i for i, ln in enumerate(lines) if ln.startswith("sim: namespaces:")][0]]
        for host, ip in (("board", BOARD_IP), ("sender", SENDER_IP), ("listener", LISTENER_IP)):
            assert re.search(r"%s %s \(mcr\d+x\d+-%s\)" % (host, ip, host), names), names

        def paste(name, *more):
            return subprocess.run(commands[name] + list(more), capture_output=True, text=True,
                                  cwd=fw.ROOT, timeout=60)

        found = paste("discover")
        assert found.returncode == 0 and BOARD_IP in found.stdout, found.stdout + found.stderr
        asked = paste("status")
        assert asked.returncode == 0 and asked.stdout.startswith("relay "), asked.stderr
        probed = paste("probe", "--count", "200", "--rate", "200")
        assert probed.returncode == 0, probed.stdout + probed.stderr
        assert "200 unique of 200 sent: lost 0" in probed.stdout
        watched = paste("top", "--duration", "2.5")
        assert watched.returncode == 0 and BOARD_IP in watched.stdout, watched.stderr
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(60)
    rest = p.stdout.read()
    err = p.stderr.read()
    assert rc == 0, rest + err
    assert "Traceback" not in rest + err
    ns = re.search(r"\((mcr\d+x\d+)-board\)", names).group(1)
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout


def test_probe_explains_its_loss_from_the_board_counters(net):
    lan, bhost, pc1, _ = net
    with running_board(bhost) as board:
        p = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "100", "--rate", "200",
                     "--size", "1500", "--json")  # over max_datagram: the board refuses each
        board.wait_for("route0 rx 100 tx 0", timeout=5)
        clean = tools_in(pc1, "probe", "--iface", SENDER_IP, "--count", "50", "--rate", "200")
    assert p.returncode == 1, p.stdout + p.stderr
    r = json.loads(p.stdout)
    s = r["loss_split"]
    assert (r["sent"], r["unique"], s["lost"]) == (100, 0, 100)
    assert (s["before_board"], s["at_board"], s["after_board"], s["unknown"]) == (0, 100, 0, 0)
    assert s["guards"] == {"big": 100, "rate": 0, "own": 0, "src": 0, "other": 0}
    assert clean.returncode == 0 and "where the" not in clean.stdout  # nothing lost: no split
