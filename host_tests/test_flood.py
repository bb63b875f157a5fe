"""The relay under a multicast flood on the emulated board (the official image named by
MCAST_RELAY_FIRMWARE; without one these skip, saying so), in virtual time, the default config
(nic.baudrate 24 MHz): more datagrams than the NIC's driver can drain starve the forward loop
(README "Limits of the board"); afterwards the relay says so once, counts the stall, reports
it (stats line, relay.stats(), discovery reply) and forwards again with its groups joined, no
reset. With relay.watchdog_ms shorter than the flood the watchdog resets the board, which
then comes back by itself (README "Faults and safe boot")."""

import ast
import json
import re
import struct

import pytest

from bench import emu as E
from host_tests.boards import images
from tools.emu import firmware, prepare
from tools.twin.runner import twin_config

FLOOD_PPS = 6000.0  # 2x the flood threshold at 24 MHz (docs/bench.md), 200-byte datagrams
BOARD_MAC_OFFSET = 6  # in a frame the board sends: its MAC is the source


def rig(image, tmp_path, **relay):
    fw = firmware.identify(image)
    cfg = twin_config(E.base_config(), E.BOARD_IP, stats_interval_s=1, **relay)
    r = E.Rig(fw, prepare.flash_with(fw, cfg), tmp_path / "board")
    r.start(E.READY["relay"])
    return r


def flood_then_probe(r, seconds):
    """FLOOD_PPS for `seconds`, then 50 probes at 50/s; (flood end, probe results)."""
    f0 = r.t + 10 * E.MS
    n = int(FLOOD_PPS * seconds)
    end = f0 + n * E.S / FLOOD_PPS
    r.offer(FLOOD_PPS, n, 200, f0)
    ptag = r.offer(50.0, 50, 200, end)
    r.run_to(end + 3 * E.S, step=100 * E.MS)
    got = r.taken() + r.drain()
    return end, E.forwarded(got, ptag, 200)


def lines_after(r, vns, text):
    return [line for i, line in enumerate(r.board.lines[:len(r.line_vns)])
            if r.line_vns[i] > vns and text in line]


# -- discovery over the emulated wire: a query, the board's ARP for us, our answer, the reply --
def _udp(src_ip, dst_ip, sport, dport, data, dst_mac):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 1, 17, 0,
                     bytes(map(int, src_ip.split("."))), bytes(map(int, dst_ip.split("."))))
    ip = ip[:10] + struct.pack("!H", E.igmp_checksum(ip)) + ip[12:]
    return dst_mac + E.SENDER_MAC + b"\x08\x00" + ip + udp


def _arp_reply(request):
    board_mac, board_ip = request[22:28], request[28:32]
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + E.SENDER_MAC + bytes(
        map(int, E.SENDER_IP.split("."))) + board_mac + board_ip
    return board_mac + E.SENDER_MAC + b"\x08\x06" + arp.ljust(46, b"\0")


def discovery_reply(r, timeout_s=3.0):
    """Ask the board (MCRELAY? to the discovery group) and return its reply as a dict."""
    group = bytes((0x01, 0x00, 0x5E, 0x7F, 0x0A, 0x01))  # 239.255.10.1
    r.board.frame_at(r.t + E.MS, _udp(E.SENDER_IP, "239.255.10.1", 40010, 50010,
                                      b"MCRELAY?flood", group))
    end = r.t + timeout_s * E.S
    while r.t < end:
        r.run_to(r.t + 50 * E.MS)
        for _, frame in r.taken():
            if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01":
                r.board.frame_at(r.t + E.MS, _arp_reply(frame))
            elif frame[12:14] == b"\x08\x00" and frame[23] == 17 and frame[36:38] == \
                    struct.pack("!H", 40010):
                return json.loads(frame[42:])
    raise AssertionError("no discovery reply within %.0f s" % timeout_s)


def relay_stats(r):
    """relay.stats() at the REPL (Ctrl-C first)."""
    r.board.interrupt()
    n = len(r.board.lines)
    r.run_to(r.t + 2 * E.S, step=100 * E.MS)
    r.board.send("print('STATS', relay.stats())\r")
    r.run_to(r.t + 1 * E.S, step=100 * E.MS)
    line = next(x for x in r.board.lines[n:] if x.startswith("STATS "))
    return ast.literal_eval(line[6:])


@pytest.mark.parametrize("image", images("the flood test on the emulated board"))
def test_a_flood_stalls_the_loop_which_says_so_and_recovers(image, tmp_path):
    r = rig(image, tmp_path)
    try:
        f0 = r.t
        end, probes = flood_then_probe(r, 10.0)
        # back by itself within 1 s of the flood's end, forwarding (the first probes meet
        # the chip's buffer still full of flood frames)
        assert probes["first_vns"] is not None and probes["first_vns"] - end < 1 * E.S, probes
        assert probes["forwarded"] >= 45, probes
        said = lines_after(r, f0, "receive stalled")
        assert len(said) == 1, said
        ms = int(re.search(r"receive stalled ([\d,]+) ms: more multicast than the NIC can "
                           r"drain; see README", said[0]).group(1).replace(",", ""))
        assert 9000 <= ms <= 10600, said
        stats = lines_after(r, end, "stats up")
        assert stats and " stalls 1 | " in stats[-1], stats[-3:]
        reply = discovery_reply(r)
        assert (reply["stalls"], reply["link_flaps"]) == (1, 0), reply
        assert 9000 <= reply["stalled_ms"] <= 10600, reply
        st = relay_stats(r)
        assert st["stalls"] == 1 and st["stalled_ms"] == reply["stalled_ms"], st
        assert r.board.boots == ["power-on"]  # no reset
    finally:
        r.stop()


@pytest.mark.parametrize("image", images("the flood test on the emulated board"))
def test_a_flood_longer_than_the_watchdog_resets_the_board(image, tmp_path):
    """relay.watchdog_ms 2000, a 5 s flood: the loop feeds the watchdog no more, the board
    resets (reset cause: watchdog), boots once the flood lets it, and forwards again."""
    r = rig(image, tmp_path, watchdog_ms=2000)
    try:
        f0 = r.t
        end, probes = flood_then_probe(r, 5.0)
        assert "watchdog" in r.board.boots[1:], r.board.boots
        # its boot line is printed before the USB serial is open again (lost, as on a real
        # board); the status line comes later and is seen
        assert lines_after(r, f0, "forward loop native"), r.board.lines[-30:]
        r.run_to(r.t + 5 * E.S, step=100 * E.MS)
        tag = r.offer(50.0, 25, 200, r.t + 10 * E.MS)
        r.run_to(r.t + 1.5 * E.S, step=100 * E.MS)
        assert E.forwarded(r.taken() + r.drain(), tag, 200)["forwarded"] >= 24
        # the boot line is printed before any console can be open after such a reset: the
        # board says why it started in its discovery replies too
        assert discovery_reply(r)["reset_cause"] == "watchdog"
    finally:
        r.stop()


@pytest.mark.parametrize("image", images("the flood test on the emulated board"))
def test_a_flood_shorter_than_the_watchdog_is_only_a_stall(image, tmp_path):
    r = rig(image, tmp_path, watchdog_ms=5000)
    try:
        f0 = r.t
        end, probes = flood_then_probe(r, 2.0)
        assert r.board.boots == ["power-on"]
        assert len(lines_after(r, f0, "receive stalled")) == 1
        assert probes["forwarded"] >= 45, probes
    finally:
        r.stop()
