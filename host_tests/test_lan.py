"""The private test LAN (tools/twin/lan.py) behaves like a small switched LAN."""

import subprocess
import sys
import time

import pytest

from host_tests.conftest import require_namespaces
from tools.twin.lan import (
    Lan,
    LanError,
    cleanup_stale,
    igmp_checksum,
    namespaces_available,
    send_query_bytes,
)

GROUP, PORT = "224.0.10.1", 50000
OTHER = "224.0.10.9"  # nobody joins this one


def _netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _running(pid, timeout=2.0):
    """True while ``pid`` exists and is not a zombie (waits up to ``timeout`` for it to end)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.02)
    return True


# (e) pure IGMP bytes --------------------------------------------------------------------------
def test_igmp_checksum_known_vectors():
    # an IGMPv2 report for 224.0.10.1 captured from the Linux kernel: 16 00 fffd e0000a01
    assert igmp_checksum(bytes.fromhex("16000000e0000a01")) == 0xFFFD
    assert igmp_checksum(bytes.fromhex("1600fffde0000a01")) == 0  # a correct packet sums to 0
    # RFC 1071 example words 0001 f203 f4f5 f6f7 -> sum ddf2 -> checksum 220d
    assert igmp_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert igmp_checksum(b"\x01") == igmp_checksum(b"\x01\x00")  # odd length is zero-padded


def test_query_bytes():
    assert send_query_bytes() == bytes.fromhex("1101eefe00000000")  # general, 0.1 s
    assert send_query_bytes(max_resp_s=10) == bytes.fromhex("1164ee9b00000000")
    q = send_query_bytes("224.0.10.1", 1.0)
    assert q[:2] == b"\x11\x0a" and q[4:] == bytes([224, 0, 10, 1])
    assert igmp_checksum(q) == 0
    for bad in ({"max_resp_s": 0}, {"max_resp_s": 30}, {"group": "198.18.0.1"}):
        with pytest.raises(ValueError):
            send_query_bytes(**bad)


def test_availability_reports_reason():
    ok, reason = namespaces_available()
    assert isinstance(ok, bool) and isinstance(reason, str)
    assert ok or reason


# (a) two PCs ----------------------------------------------------------------------------------
def test_two_pcs_multicast(lan):
    pc1 = lan.add_host("pc1", "198.18.0.20")
    pc2 = lan.add_host("pc2", "198.18.0.21")
    assert (pc1.ifname, pc1.prefix, pc1.ip) == ("eth0", 15, "198.18.0.20")
    assert pc1.cmd(["true"]) == ["ip", "netns", "exec", pc1.ns, "true"]
    assert pc2.carrier() == 1
    with pc2.receiver(GROUP, PORT) as rx:
        assert pc1.send(GROUP, PORT, count=10, interval=0.002) == 10
        assert rx.wait_for(10, 3), rx.datagrams
        assert {d[1] for d in rx.datagrams} == {"198.18.0.20"}
        assert sorted(int(d[3]) for d in rx.datagrams) == list(range(10))
    # a plain python3 -c script through host.run works as well (relies on the 224/4 route)
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.sendto(b'hello', ('{GROUP}', {PORT}))")
    with pc2.receiver(GROUP, PORT) as rx:
        res = pc1.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert rx.wait_for(1, 3)
        assert rx.datagrams[0][3] == b"hello"


def test_addresses_are_confined(lan):
    with pytest.raises(ValueError):
        lan.add_host("out", "192.168.1.10")
    with pytest.raises(ValueError):
        lan.add_host("wide", "198.18.0.10", prefix=8)
    lan.add_host("a", "198.18.0.10")
    with pytest.raises(ValueError):
        lan.add_host("a", "198.18.0.11")
    with pytest.raises(ValueError):
        lan.add_host("b", "198.18.0.10")


# (b) snooping ---------------------------------------------------------------------------------
def test_snooping_strict_after_query(lan):
    board = lan.add_host("board", "198.18.0.10")
    pc1 = lan.add_host("pc1", "198.18.0.20")
    pc2 = lan.add_host("pc2", "198.18.0.21")
    rx = pc1.receiver(GROUP, PORT)
    assert lan.wait_mdb(("pc1", GROUP))

    # no querier yet: the bridge does not trust its table and floods
    cap = pc2.capture(dst=GROUP, dport=PORT)
    board.send(GROUP, PORT, count=5)
    assert cap.wait_for(5, 3)
    cap.stop()

    lan.query()
    assert lan.routers() == ["q"]
    assert ("pc1", GROUP) in lan.mdb()
    assert not [e for e in lan.mdb() if e[0] in ("pc2", "board")]

    cap = pc2.capture(dst=None, dport=PORT)
    before = rx.count
    board.send(GROUP, PORT, count=20, interval=0.001)
    board.send(OTHER, PORT, count=20, interval=0.001)  # unregistered: not flooded either
    assert rx.wait_for(before + 20, 3)
    assert cap.stop(settle=0.3) == 0, cap.packets

    # a join now is seen at once; a leave removes the port at once (fastleave)
    with pc2.receiver(GROUP, PORT) as rx2:
        assert lan.wait_mdb(("pc2", GROUP))
        board.send(GROUP, PORT, count=5)
        assert rx2.wait_for(5, 3)
        rx2.leave()
        assert lan.wait_mdb(("pc2", GROUP), present=False)
    assert ("pc1", GROUP) in lan.mdb()


# (c) cable pull -------------------------------------------------------------------------------
@pytest.fixture
def member(lan):
    """A sender ("board") and a PC ("pc1") joined to GROUP:PORT, the switch snooping
    strictly: (lan, board, pc1, its receiver)."""
    board = lan.add_host("board", "198.18.0.10")
    pc1 = lan.add_host("pc1", "198.18.0.20")
    rx = pc1.receiver(GROUP, PORT)
    lan.query()
    return lan, board, pc1, rx


def test_cable_pull_and_rejoin(member):
    lan, board, pc1, rx = member
    assert lan.wait_mdb(("pc1", GROUP))
    board.send(GROUP, PORT, count=5)
    assert rx.wait_for(5, 3)

    lan.cable(pc1, up=False)
    assert pc1.carrier() == 0
    assert lan.wait_mdb(("pc1", GROUP), present=False)  # the bridge forgets the port's groups
    board.send(GROUP, PORT, count=5)
    time.sleep(0.3)
    assert rx.count == 5

    lan.cable(pc1, up=True)
    assert pc1.carrier() == 1
    board.send(GROUP, PORT, count=5)  # no re-report yet: still nothing
    time.sleep(0.3)
    assert rx.count == 5
    assert ("pc1", GROUP) not in lan.mdb()

    rx.rejoin()  # leave + join: the kernel sends a fresh report
    assert lan.wait_mdb(("pc1", GROUP))
    board.send(GROUP, PORT, count=5)
    assert rx.wait_for(10, 3)


def test_query_after_replug_restores_membership(member):
    lan, board, pc1, rx = member
    lan.cable(pc1, up=False)
    lan.cable(pc1, up=True)
    assert lan.wait_mdb(("pc1", GROUP), present=False, timeout=0.5)
    lan.query()  # the host answers the query, the bridge learns the port again
    assert lan.wait_mdb(("pc1", GROUP))
    board.send(GROUP, PORT, count=5)
    assert rx.wait_for(5, 3)


def test_snooping_off_is_a_hub(lan):
    board = lan.add_host("board", "198.18.0.10")
    pc2 = lan.add_host("pc2", "198.18.0.21")
    lan.query()
    lan.snooping(False)
    with pc2.capture(dst=GROUP, dport=PORT) as cap:
        board.send(GROUP, PORT, count=5)
        assert cap.wait_for(5, 3)
    lan.snooping(True)
    lan.query()
    with pc2.capture(dst=GROUP, dport=PORT) as cap:
        board.send(GROUP, PORT, count=5)
        assert cap.stop(settle=0.3) == 0


# (d) cleanup ----------------------------------------------------------------------------------
def test_close_removes_everything():
    require_namespaces()
    lan = Lan()
    pc = lan.add_host("pc1", "198.18.0.20")
    lan.add_host("pc2", "198.18.0.21")
    lan.query()
    sleeper = pc.popen(["sleep", "60"])
    orphan = pc.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
                    capture_output=True, text=True)
    orphan_pid = int(orphan.stdout)
    assert len([n for n in _netns_names() if n.startswith(lan.tag + "-")]) == 4
    lan.close()
    lan.close()  # twice is fine
    assert [n for n in _netns_names() if n.startswith(lan.tag + "-")] == []
    assert sleeper.poll() is not None
    assert not _running(orphan_pid)
    with pytest.raises(LanError):
        lan.add_host("pc3", "198.18.0.22")


def test_close_after_error_in_with_block():
    require_namespaces()
    with pytest.raises(RuntimeError):
        with Lan() as lan:
            lan.add_host("pc1", "198.18.0.20")
            raise RuntimeError("boom")
    assert [n for n in _netns_names() if n.startswith(lan.tag + "-")] == []


def test_cleanup_stale_removes_only_dead_runs():
    require_namespaces()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"mcrt{dead.pid}x0-sw"
    with Lan(prefix="mcrt") as live:
        live.add_host("pc1", "198.18.0.20")
        subprocess.run(["ip", "netns", "add", stale], check=True)
        try:
            removed = cleanup_stale("mcrt")
            names = _netns_names()
            assert stale in removed and stale not in names
            assert live.switch_ns in names and f"{live.tag}-pc1" in names
        finally:
            subprocess.run(["ip", "netns", "del", stale], capture_output=True)


def test_require_namespaces_skips_locally_fails_in_ci(monkeypatch):
    import tools.twin.lan as lanmod

    monkeypatch.setattr(lanmod, "namespaces_available", lambda: (False, "no netns here"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no netns here"):
        require_namespaces()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no netns here"):
        require_namespaces()
