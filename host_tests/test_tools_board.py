"""deploy, monitor and selftest against stand-in boards: the MicroPython unix
port on a pseudo-terminal (tools/twin/serial_board.py) with a folder as its
flash, running the firmware in a namespace of the private LAN. mpremote talks
to it exactly as to /dev/ttyACM0."""

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from host_tests.conftest import require_namespaces
from tools import fw
from tools.twin.lan import BOARD_IP, SENDER_IP
from tools.twin.runner import twin_config
from tools.twin.serial_board import SerialBoard, mpremote

PY = sys.executable
BOARD2_IP = "198.18.0.11"
UID1 = "e661410403000001"
UID2 = "e661410403000002"
MODULES = sorted(p.stem for p in (fw.ROOT / "lib").glob("*.py"))


def tools(*argv, timeout=120):
    return subprocess.run([PY, "-m", "tools", *argv], capture_output=True, text=True,
                          cwd=fw.ROOT, timeout=timeout)


def base_config(ip=BOARD_IP, **relay):
    relay.setdefault("stats_interval_s", 1)
    relay.setdefault("watchdog_ms", 0)
    return twin_config(json.loads((fw.ROOT / "config.json").read_text()), ip, **relay)


@pytest.fixture(scope="module")
def net():
    require_namespaces()
    from tools.twin.lan import Lan

    with Lan() as lan:
        hosts = {
            "board": lan.add_host("board", BOARD_IP),
            "board2": lan.add_host("board2", BOARD2_IP),
            "pc": lan.add_host("pc", SENDER_IP),
        }
        lan.query()
        yield lan, hosts


@pytest.fixture(scope="module")
def cfgdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("deploy")
    (d / "config.json").write_text(json.dumps(base_config(), indent=2))
    return d


@pytest.fixture(scope="module")
def board(net):
    """One stand-in board for the module, fresh (empty flash) at first."""
    lan, hosts = net
    b = SerialBoard(host=hosts["board"], uid=UID1).start()
    b.wait_for(">>> ", timeout=10)
    yield b
    b.close()


def deploy(board_or_port, cfgdir, *extra, config="config.json"):
    ports = board_or_port if isinstance(board_or_port, list) else [board_or_port]
    argv = ["deploy", "--config", str(cfgdir / config), "--boot-timeout", "20"]
    for p in ports:
        argv += ["--port", p.port]
    return tools(*argv, *extra)


def copied(out):
    return sorted(ln.split()[1] for ln in out.splitlines() if ln.startswith("  copy "))


def flash_state(b):
    return {str(p.relative_to(b.flash)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in b.flash.rglob("*") if p.is_file()}


# -- deploy ---------------------------------------------------------------------------------
def test_deploy_fresh_board_copies_everything_and_boots(board, cfgdir):
    for f in sorted(board.flash.rglob("*"), reverse=True):  # out of the box: nothing on it
        if f.is_dir():
            f.rmdir()
        else:
            f.unlink()
    p = deploy(board, cfgdir)
    assert p.returncode == 0, p.stdout + p.stderr
    # the forward loop also as machine code for the twin's x86-64 interpreter
    want = sorted(["boot.py", "main.py", "config.json", "lib/forward_native.mpy"]
                  + ["lib/%s.mpy" % m for m in MODULES])
    assert copied(p.stdout) == want
    assert (board.flash / "lib" / "forward_native.mpy").read_bytes() == \
        (fw.BUILD / "lib-x64" / "forward_native.mpy").read_bytes()
    assert "| forward loop native" in p.stdout
    # byte for byte what the repo (and build/) holds
    for name in ("boot.py", "main.py"):
        assert (board.flash / name).read_bytes() == (fw.ROOT / name).read_bytes()
    assert (board.flash / "config.json").read_bytes() == (cfgdir / "config.json").read_bytes()
    for m in MODULES:
        assert (board.flash / "lib" / (m + ".mpy")).read_bytes() == \
            (fw.BUILD / "lib" / (m + ".mpy")).read_bytes()
    assert not list((board.flash / "lib").glob("*.py"))  # only bytecode on the board
    assert "soft reboot, boot log:" in p.stdout
    assert "  | mcast-relay %s | MicroPython" % fw.version() in p.stdout
    assert "OK: mcast-relay %s, IP %s/15 (static), link up" % (fw.version(), BOARD_IP) in p.stdout


def test_deployed_mpy_files_load_in_micropython(board, cfgdir):
    deploy(board, cfgdir)
    code = ("import sys\nfor m in %r:\n    __import__(m)\n"
            "print('FILES', [sys.modules[m].__file__ for m in %r])" % (MODULES, MODULES))
    out = mpremote(board.port, "resume", "exec", code).stdout
    files = eval(out.split("FILES", 1)[1].strip())
    assert len(files) == len(MODULES)
    for m, f in zip(MODULES, files, strict=True):
        assert f.endswith("/lib/%s.mpy" % m), f  # "/lib/relay.mpy" on the board
    # and they ran the relay: the boot above came from these .mpy files only
    assert "relay: 1 route(s): route0" in board.text()


def test_second_deploy_copies_nothing(board, cfgdir):
    deploy(board, cfgdir)  # whatever the previous test left: now in step
    before = flash_state(board)
    p = deploy(board, cfgdir)
    assert p.returncode == 0, p.stdout
    assert copied(p.stdout) == []
    assert "up to date, nothing to copy" in p.stdout
    assert flash_state(board) == before  # not even rewritten
    assert "OK: mcast-relay" in p.stdout


def test_changed_config_copies_only_config(board, cfgdir):
    deploy(board, cfgdir)
    (cfgdir / "config2.json").write_text(json.dumps(base_config(stats_interval_s=2)))
    p = deploy(board, cfgdir, config="config2.json")
    assert p.returncode == 0, p.stdout
    assert copied(p.stdout) == ["config.json"]
    on_board = json.loads((board.flash / "config.json").read_text())
    assert on_board["relay"]["stats_interval_s"] == 2


def test_stale_source_shadowing_an_mpy_is_removed(board, cfgdir):
    deploy(board, cfgdir)
    (board.flash / "lib" / "relay.py").write_text("raise ImportError('stale')\n")
    p = deploy(board, cfgdir)
    assert p.returncode == 0, p.stdout
    assert "  remove lib/relay.py (would shadow the .mpy)" in p.stdout
    assert not (board.flash / "lib" / "relay.py").exists()


def test_bad_config_refused_before_touching_the_board(board, cfgdir):
    deploy(board, cfgdir)  # a running relay, whatever ran before
    bad = base_config()
    bad["routes"][0]["to"] = bad["routes"][0]["from"]
    bad["nic"]["cs"] = 99
    (cfgdir / "bad.json").write_text(json.dumps(bad))
    mark = board.mark()
    before = flash_state(board)
    p = deploy(board, cfgdir, config="bad.json")
    assert p.returncode == 1
    assert "error(s); nothing was copied" in p.stdout
    assert "nic.cs" in p.stdout and "routes[0]" in p.stdout
    board.wait_for("stats up", timeout=5, start=mark)  # the relay still runs: its next line
    after = board.text()[mark:]
    assert "raw REPL" not in after and "soft reboot" not in after, after
    assert flash_state(board) == before


def test_overlay_by_unique_id_and_dry_run(board, cfgdir):
    deploy(board, cfgdir)
    (cfgdir / "boards.json").write_text(json.dumps({
        "_comment": "per-board settings, keyed by machine.unique_id() in hex",
        UID1: {"relay": {"stats_interval_s": 3}}}))
    before = flash_state(board)
    p = deploy(board, cfgdir, "--dry-run")
    assert p.returncode == 0, p.stdout
    assert "  would copy config.json" in p.stdout and "dry run: 1 to copy" in p.stdout
    assert flash_state(board) == before
    p = deploy(board, cfgdir)  # boards.json next to the config is picked up
    assert p.returncode == 0, p.stdout
    assert "overlay from boards file" in p.stdout and copied(p.stdout) == ["config.json"]
    on_board = json.loads((board.flash / "config.json").read_text())
    assert on_board["relay"]["stats_interval_s"] == 3
    assert on_board["network"]["ip"] == BOARD_IP
    (cfgdir / "boards.json").unlink()


def test_two_boards_same_static_ip_refused_then_overlays(net, board, cfgdir, tmp_path):
    lan, hosts = net
    deploy(board, cfgdir)
    b2 = SerialBoard(host=hosts["board2"], uid=UID2).start()
    try:
        b2.wait_for(">>> ", timeout=10)
        d = tmp_path
        (d / "config.json").write_text((cfgdir / "config.json").read_text())
        p = deploy([board, b2], d)
        assert p.returncode == 1
        assert "would both use the static address %s" % BOARD_IP in p.stdout
        assert "nothing was copied" in p.stdout
        assert not any(b2.flash.iterdir())
        (d / "boards.json").write_text(json.dumps({
            UID2: {"network": {"ip": BOARD2_IP, "netmask": "255.254.0.0",
                               "gateway": "0.0.0.0", "dns": "0.0.0.0"}}}))
        p = deploy([board, b2], d)
        assert p.returncode == 0, p.stdout
        assert "deploy: 2 of 2 board(s) up" in p.stdout
        assert "(board %s): OK: mcast-relay %s, IP %s/15" % (UID2, fw.version(), BOARD2_IP) \
            in p.stdout
        assert "(board %s): up to date" % UID1 in p.stdout
    finally:
        b2.close()


# -- monitor --------------------------------------------------------------------------------
def test_monitor_for_seconds_shows_stats_lines(board, cfgdir):
    deploy(board, cfgdir)
    p = tools("monitor", "--port", board.port, "--for", "2.5")
    assert p.returncode == 0, p.stderr
    assert "stats up" in p.stdout and "route0 rx" in p.stdout
    p = tools("monitor", "--port", board.port, "--reset", "--for", "0.5")
    assert "soft reboot" in p.stdout
    assert "| IP %s/15" % BOARD_IP in p.stdout


def test_monitor_without_terminal_refuses_repl(board):
    p = subprocess.run([PY, "-m", "tools", "monitor", "--port", board.port], capture_output=True,
                       text=True, cwd=fw.ROOT, stdin=subprocess.DEVNULL, timeout=30)
    assert p.returncode == 2 and "needs a terminal" in p.stderr


def test_monitor_repl_in_a_terminal(board, cfgdir):
    """The interactive REPL (mpremote repl) in a pseudo-terminal: stats lines
    scroll by, Ctrl-C stops the relay, relay.stats() answers, Ctrl-] leaves."""
    deploy(board, cfgdir)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(fw.ROOT)
        os.execv(PY, [PY, "-m", "tools", "monitor", "--port", board.port])
    seen = b""

    def read_until(needle, timeout=15):
        nonlocal seen
        end = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        return needle in seen

    try:
        assert read_until(b"Connected to MicroPython"), seen
        assert read_until(b"stats up"), seen
        os.write(fd, b"\x03")  # Ctrl-C: the relay stops, `relay` stays
        assert read_until(b">>> "), seen
        os.write(fd, b"print('RX', relay.stats()['routes'][0]['rx'])\r")
        assert read_until(b"RX "), seen
        os.write(fd, b"\x1d")  # Ctrl-]
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


# -- selftest ---------------------------------------------------------------------------------
def _selftest(lan, hosts, board, *extra, cable=True):
    p = hosts["pc"].popen([PY, "-m", "tools", "selftest", "--port", board.port,
                           "--iface", SENDER_IP, "--count", "300", "--rate", "200", "--json",
                           *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=fw.ROOT)
    lines = []
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        if cable and "PULL the board's Ethernet cable" in line:
            time.sleep(0.3)
            lan.cable(hosts["board"], False)
        if cable and "PLUG it back in" in line:
            time.sleep(2.0)
            lan.cable(hosts["board"], True)
    rc = p.wait(60)
    text = "\n".join(lines)
    results = json.loads(text[text.index("{\n"):])
    return rc, text, {i["item"]: i for i in results["items"]}


def test_selftest_against_the_simulated_board_with_cable_pull(net, board, cfgdir):
    lan, hosts = net
    deploy(board, cfgdir)
    rc, text, items = _selftest(lan, hosts, board)
    assert rc == 0, text
    assert list(items) == ["boot", "link", "intn", "forward", "stats", "mac-filter", "cable"]
    assert all(i["status"] == "PASS" for i in items.values()), text
    assert "300/300 back, loss 0.00%" in items["forward"]["detail"]
    assert "via %s" % BOARD_IP in items["forward"]["detail"]
    assert "rx 300 tx 300" in items["stats"]["detail"]
    assert "passes multicast" in items["mac-filter"]["detail"]
    assert "forwarding again within" in items["cable"]["detail"]
    assert "link DOWN" in board.text() and "link up again" in board.text()


def test_selftest_reports_a_board_without_intn(net, board, cfgdir):
    lan, hosts = net
    deploy(board, cfgdir)
    cfg = base_config()
    cfg["nic"]["intn"] = None
    assert fw.validate(cfg)[1] == []
    (board.flash / "config.json").write_text(json.dumps(cfg))  # as if deployed
    try:
        rc, text, items = _selftest(lan, hosts, board, "--no-cable", cable=False)
    finally:
        (board.flash / "config.json").write_text((cfgdir / "config.json").read_text())
    assert rc == 1, text
    assert items["intn"]["status"] == "FAIL" and "64 ms" in items["intn"]["detail"]
    assert items["forward"]["status"] == "PASS"
    assert items["cable"]["status"] == "SKIP"


def test_selftest_says_where_its_probe_lost_datagrams(net, board, cfgdir):
    lan, hosts = net
    deploy(board, cfgdir)
    rc, text, items = _selftest(lan, hosts, board, "--no-cable", "--size", "1500",
                                cable=False)  # over the config's max_datagram 1472
    assert rc == 1, text
    fwd = items["forward"]
    assert fwd["status"] == "FAIL" and "0/300 back, loss 100.00%" in fwd["detail"]
    assert "where the 300 lost went: 0 before the board's socket (never read by the relay), " \
           "300 refused by the board (big 300: longer than relay.max_datagram), 0 after the " \
           "board" in fwd["detail"], fwd["detail"]
    assert items["mac-filter"]["status"] == "PASS"  # it received them: the chip passed them


def test_mip_installs_lib_from_the_local_package_json(board):
    """firmware/README.md's way without deploy: `mpremote mip install ./package.json` from the
    repository's root puts every lib/*.py on the board's /lib."""
    p = subprocess.run([PY, "-m", "mpremote", "connect", board.port, "resume", "mip", "install",
                        "./package.json"], capture_output=True, text=True, cwd=fw.ROOT,
                       timeout=120)
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        for src in fw.lib_sources():
            assert (board.flash / "lib" / src.name).read_bytes() == src.read_bytes(), src.name
    finally:
        for src in fw.lib_sources():  # a .py would shadow the deployed .mpy of the next tests
            (board.flash / "lib" / src.name).unlink(missing_ok=True)
