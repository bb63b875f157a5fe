"""`python -m bench.emu --firmware UF2 [--elf ELF] [--quick]` (`make bench-board FIRMWARE=...`):
the forward path measured on the emulated board (tools/emu: the official MicroPython image on
rp2040js with a WIZnet chip model), in virtual time, so the figures do not depend on the host.

Three contenders, each deployed by the project's own deploy (tools.emu.prepare.flash_with):
the seed loop (bench/emu_programs/seed_main.py as main.py), a bare loop (bare_main.py as
main.py, boot.py emptied) and the relay (boot.py, main.py and lib/ as deployed, the repo's
config.json moved to 198.18.0.10). Parts:

* rate: the loss-free rate (the highest offered rate with <= 1 % loss over 400 datagrams,
  bench.measure.rate_search) at 200 B and 1472 B, every forwarded datagram checked byte for
  byte against what was sent;
* flood: the relay and the bare loop offered 0.5x-10x their loss-free rate for 2 s each
  (forwarded/s during the flood, the relay's stats lines during it, a probe burst after it),
  and the flood threshold (the lowest offered rate >= the loss-free rate, sustained 2 s, at
  which the forwarded rate falls below half the loss-free rate);
* repl: the relay stopped with Ctrl-C (at the REPL, NIC up), the same floods, an expression
  typed 0.5 s into each: when the answer came;
* profile: PC samples by function (the firmware's ELF symbols, pyelftools) for the bare loop and
  the relay offered the bare loop's loss-free rate at 200 B, and 0.9x the relay's (where both
  forward everything);
* speed: the emulator's virtual/wall time with the relay forwarding at its loss-free rate, alone.

Results: DIR/bench-board.json and the section "On the emulated board" of DIR/bench.md (full
mode: docs/; quick mode: build/bench-board-quick/, one short trial per contender, no claims).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import hashlib
import json
import os
import platform
import re
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.emu import firmware as fwmod
from tools.emu import prepare
from tools.emu.board import EmulatedBoard
from tools.emu.link import EmulatorError, node_binary
from tools.twin.lan import BOARD_IP, SENDER_IP, igmp_checksum
from tools.twin.runner import twin_config

from .__main__ import cpu_model
from .measure import rate_search

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "emu_programs"
SENDER_MAC = bytes.fromhex("0200c6120014")
IN_GROUP, OUT_GROUP, PORT = "224.0.10.1", "224.0.10.2", 50000
SIZES = (200, 1472)
DEFAULT_SPI = 20_000_000
STATS_S = 1  # the relay's stats_interval_s here: a line a second shows it alive in a flood
MS = 1_000_000  # ns
S = 1_000_000_000

# The rate search (bench.measure.rate_search): from START pps, x FACTOR while trials of
# EXPLORE datagrams pass, then confirm and bisect BISECT times with trials of N datagrams.
START, FACTOR, EXPLORE, N, BISECT, MAX_LOSS = 25.0, 2.0, 100, 400, 6, 0.01
FLOOD_X = (0.5, 1, 1.5, 2, 3, 5, 7, 10)  # offered, x the loss-free rate
FLOOD_S = 2.0
THRESHOLD_STEPS = 3  # bisections between the last flood point above half and the first below
REF_FLOOD = 3000.0  # board-facts.md: 3,000/s of 200 B for 2 s stopped every loop
PROBE_RATE, PROBE_N = 50.0, 25  # the burst after a flood: 0.5 s at 50/s
PROFILE_S, PROFILE_NS = 2.0, 10_000  # profile: 2 s of traffic, a PC sample every 10 us
MIN_SAMPLES = 20  # bench-board.json: functions with fewer samples are summed into one row
OTHER = "(other functions, each < %d samples)" % MIN_SAMPLES
TOP = 25

CONTENDERS = {
    "seed": "seed loop (tutorial: 2 MHz SPI, no INTN, 2 prints)",
    "bare": "bare loop (blocking recvfrom + sendto)",
    "relay": "the relay (boot.py, main.py, lib/)",
}
READY = {"seed": "IP address :", "bare": "bare: forwarding", "relay": "relay: "}


def log(msg: str) -> None:
    print(msg, flush=True)


# -- what goes on the wire ---------------------------------------------------------------------
MAGIC = b"MCRB"
_HEAD = struct.Struct("!4sII")  # magic, tag (one per trial), sequence number
# Printable filler after the header: the seed prints each datagram's repr, 1 char a byte.
_FILL = bytes(range(0x21, 0x7F)) * 20


def payload(tag: int, seq: int, size: int) -> bytes:
    k = seq % 94
    return _HEAD.pack(MAGIC, tag, seq) + _FILL[k:k + size - _HEAD.size]


def _aton(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def udp_frame(data: bytes, dst: str = IN_GROUP, ident: int = 0) -> bytes:
    """An Ethernet frame with one IPv4/UDP datagram from the sender to group dst:PORT."""
    udp = struct.pack("!HHHH", 40000, PORT, 8 + len(data), 0) + data  # no UDP checksum
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 1, 17, 0,
                     _aton(SENDER_IP), _aton(dst))
    ip = ip[:10] + struct.pack("!H", igmp_checksum(ip)) + ip[12:]
    g = _aton(dst)
    mac = bytes((0x01, 0x00, 0x5E, g[1] & 0x7F, g[2], g[3]))
    return mac + SENDER_MAC + b"\x08\x00" + ip + udp


def datagram(frame: bytes):
    """(source ip, ttl, UDP payload) of a frame to OUT_GROUP:PORT, else None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 15) * 4
    if frame[30:34] != _aton(OUT_GROUP):
        return None
    u = 14 + ihl
    if struct.unpack_from("!H", frame, u + 2)[0] != PORT:
        return None
    ulen = struct.unpack_from("!H", frame, u + 4)[0]
    return ".".join(str(b) for b in frame[26:30]), frame[22], frame[u + 8:u + ulen]


# -- one emulated board, driven in virtual time --------------------------------------------------
class Rig:
    """An emulated board with one contender on its flash; `t` is how far (virtual ns) it ran."""

    def __init__(self, fw, flash, workdir: Path):
        self.out: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self.board = EmulatedBoard(fw, workdir=workdir, timing="virtual", flash_from=flash,
                                   on_frame=self._frame)
        self.t = 0.0
        self.line_vns: list[float] = []  # per console line: virtual time it was seen by
        self.tag = 0
        self.speeds: list[dict] = []  # virtual/wall of the traffic windows
        self.stats_lines = False  # the contender prints a stats line every STATS_S

    def _frame(self, vns, frame):
        with self._lock:
            self.out.append((vns, frame))

    def taken(self) -> list[tuple[float, bytes]]:
        with self._lock:
            out, self.out = self.out, []
        return out

    def run_to(self, vns: float, step: float | None = None) -> None:
        while self.t < vns:
            nxt = min(vns, self.t + (step or vns))
            self.board.run_until(nxt, timeout=900)
            self.t = nxt
            lines = self.board.lines
            self.line_vns.extend([nxt] * (len(lines) - len(self.line_vns)))

    def timed(self, vns: float, step: float | None = None, kind: str = "") -> None:
        """run_to, noting the emulator's speed over the window."""
        v0, w0 = self.t, time.monotonic()
        self.run_to(vns, step)
        wall = time.monotonic() - w0
        if wall > 0.05:
            self.speeds.append({"kind": kind, "virtual_s": (self.t - v0) / S, "wall_s": wall,
                                "speed": (self.t - v0) / S / wall})

    def offer(self, rate: float, n: int, size: int, start: float) -> int:
        """Schedule n datagrams at exactly `rate` from `start`; returns their tag."""
        self.tag += 1
        for i in range(n):
            self.board.frame_at(start + i * S / rate, udp_frame(payload(self.tag, i, size), ident=i))
        return self.tag

    def lines_between(self, a: float, b: float, text: str) -> list[int]:
        return [i for i, line in enumerate(self.board.lines[:len(self.line_vns)])
                if a < self.line_vns[i] <= b and text in line]

    def start(self, ready: str, timeout_s: float = 90.0) -> None:
        self.board.start()
        while not any(ready in line for line in self.board.lines):
            if self.t > timeout_s * S:
                raise EmulatorError("the board never printed %r; its output:\n%s" % (
                    ready, "\n".join(self.board.lines[-30:])))
            self.run_to(self.t + 250 * MS)
        self.ready_vns = self.t
        # Forwarding yet? One probe every 50 ms until one comes out.
        for _ in range(200):
            tag = self.offer(1.0, 1, 200, self.t + MS)
            self.run_to(self.t + 50 * MS)
            if forwarded(self.taken(), tag, 200)["forwarded"]:
                break
        else:
            raise EmulatorError("the board never forwarded a probe; its output:\n%s"
                                % "\n".join(self.board.lines[-30:]))
        self.run_to(self.t + 300 * MS)
        self.taken()

    def drain(self, quiet: float = 300 * MS, limit: float = 5 * S) -> list[tuple[float, bytes]]:
        """Run until no frame has come out for `quiet`; every frame since the last take."""
        got = []
        end = self.t + limit
        last = self.t
        while self.t < end and self.t - last < quiet:
            self.run_to(self.t + 100 * MS)
            new = self.taken()
            if new:
                got += new
                last = self.t
        return got

    def stop(self) -> None:
        self.board.stop()


def forwarded(frames, tag: int, size: int, window: tuple[float, float] | None = None) -> dict:
    """What of trial `tag` came out on OUT_GROUP:PORT (within `window`, virtual ns)."""
    seen: dict[int, float] = {}
    intact = dups = foreign = 0
    sources, ttls = set(), set()
    for vns, frame in frames:
        d = datagram(frame)
        if d is None:
            continue
        src, ttl, data = d
        if len(data) < _HEAD.size or data[:4] != MAGIC:
            foreign += 1
            continue
        _, t, seq = _HEAD.unpack_from(data)
        if t != tag or (window and not window[0] <= vns <= window[1]):
            continue
        if seq in seen:
            dups += 1
            continue
        seen[seq] = vns
        sources.add(src)
        ttls.add(ttl)
        if data == payload(tag, seq, size):
            intact += 1
    return {"forwarded": len(seen), "intact": intact, "duplicates": dups,
            "sources": sorted(sources), "ttls": sorted(ttls),
            "first_vns": min(seen.values()) if seen else None}


def trial(rig: Rig, rate: float, n: int, size: int) -> dict:
    start = rig.t + 10 * MS
    tag = rig.offer(rate, n, size, start)
    rig.timed(start + (n - 1) * S / rate + MS, kind="trial")
    got = rig.taken() + rig.drain()
    f = forwarded(got, tag, size)
    f.pop("first_vns")
    return {"offered": rate, "sent": n, **f, "loss": 1.0 - f["forwarded"] / n}


def loss_free(rig: Rig, size: int, quick: bool, say) -> dict:
    if quick:
        t = trial(rig, 100.0, 50, size)
        say("    %5d B: 100/s x 50: forwarded %d (intact %d)" % (size, t["forwarded"],
                                                               t["intact"]))
        return {"trials": [t], "loss_free_pps": None}
    trials = []
    g = rate_search(START, FACTOR, EXPLORE, N, BISECT)
    step = next(g)
    while True:
        rate, n = step
        t = trial(rig, rate, n, size)
        trials.append(t)
        ok = n - t["forwarded"] <= MAX_LOSS * n + 1e-9  # 4 of 400 lost still passes
        say("    %5d B: %7.1f/s x %d: forwarded %d (intact %d), loss %.1f %%" % (
            size, rate, n, t["forwarded"], t["intact"], 100 * t["loss"]))
        try:
            step = g.send((ok, False))
        except StopIteration as done:
            good, bad, _ = done.value
            break
    best = [t for t in trials if t["offered"] == good and t["sent"] == N]
    return {"loss_free_pps": good, "first_failing_pps": bad, "trials": trials,
            "intact_at_loss_free": bool(best) and best[-1]["intact"] == best[-1]["forwarded"]}


def flood(rig: Rig, rate: float, size: int, seconds: float = FLOOD_S, repl: bool = False) -> dict:
    """Offer `rate` for `seconds`, then a probe burst. repl: the board is at its REPL: an
    expression typed 0.5 s into the flood, and when its answer came."""
    f0 = rig.t + 10 * MS
    n = max(1, int(rate * seconds))
    end = f0 + n * S / rate
    tag = rig.offer(rate, n, size, f0)
    ptag = rig.offer(PROBE_RATE, PROBE_N, size, end)
    stats0 = rig.board.status()["chip"]
    token = None
    if repl:
        rig.run_to(f0 + min(500 * MS, seconds * S / 4), step=100 * MS)
        typed = rig.t
        token = str(700000 + rig.tag)
        rig.board.send("print(%s)\r" % token)
    rig.timed(end, step=(20 if repl else 100) * MS, kind="flood")
    stats1 = rig.board.status()["chip"]
    rig.run_to(end + PROBE_N / PROBE_RATE * S + 1 * S, step=(20 if repl else 100) * MS)
    got = rig.taken() + rig.drain()
    during = forwarded(got, tag, size, (f0, end))
    after = forwarded(got, tag, size, (end + 1, float("inf")))
    probes = forwarded(got, ptag, size)
    r = {"offered": rate, "seconds": seconds, "sent": n,
         "forwarded_during": during["forwarded"],
         "forwarded_per_s": during["forwarded"] / seconds,
         "intact": during["intact"] + after["intact"] == during["forwarded"] + after["forwarded"],
         "forwarded_after": after["forwarded"],
         "chip_dropped_full": stats1["rxDroppedFull"] - stats0["rxDroppedFull"],
         "probes_sent": PROBE_N, "probes_forwarded": probes["forwarded"],
         "recovered_ms": (probes["first_vns"] - end) / MS if probes["first_vns"] else None}
    if repl:
        ans = [i for i, line in enumerate(rig.board.lines) if line.strip() == token]
        r["repl_answer_ms"] = ((rig.line_vns[ans[0]] - typed) / MS
                               if ans and ans[0] < len(rig.line_vns) else None)
        r["repl_answered_during"] = bool(ans) and rig.line_vns[ans[0]] <= end
    elif rig.stats_lines:
        r["stats_lines_during"] = len(rig.lines_between(f0, end, "stats up"))
        r["stats_lines_expected"] = int(seconds // STATS_S)
    return r


def line_rate(size: int) -> float:
    """Frames/s of a UDP payload that 100 Mbit/s Ethernet carries (headers, FCS, preamble, gap)."""
    return 100e6 / ((size + 28 + 14 + 4 + 8 + 12) * 8)


def flood_curve(rig: Rig, lf: float, size: int, quick: bool, say, repl: bool = False) -> dict:
    xs = (2,) if quick else FLOOD_X
    points = []
    for x in xs:
        if x * lf > line_rate(size):
            say("    %5d B flood %4.1fx: above the Ethernet line rate (%.0f/s): skipped" % (
                size, x, line_rate(size)))
            continue
        p = flood(rig, x * lf, size, FLOOD_S / 4 if quick else FLOOD_S, repl)
        p["x"] = x
        points.append(p)
        say("    %5d B flood %4.1fx = %6.0f/s: %6.0f/s forwarded, %sprobes %d/%d%s" % (
            size, x, p["offered"], p["forwarded_per_s"],
            "REPL %s, " % _repl_text(p) if repl else "stats lines %d/%d, " % (
                p["stats_lines_during"], p["stats_lines_expected"]) if "stats_lines_during" in p
            else "", p["probes_forwarded"], p["probes_sent"],
            "" if p["recovered_ms"] is None else ", recovered %.0f ms after" % p["recovered_ms"]))
    out = {"points": points}
    if quick or repl:
        return out
    # The threshold: lowest offered rate >= lf at which forwarded/s < lf / 2.
    above = [p for p in points if p["offered"] >= lf]
    lo = None
    hi = None
    for p in above:
        if p["forwarded_per_s"] < lf / 2:
            hi = p["offered"]
            break
        lo = p["offered"]
    extra = []
    if hi is not None and lo is not None:
        for _ in range(THRESHOLD_STEPS):
            mid = (lo + hi) / 2
            p = flood(rig, mid, size)
            extra.append(p)
            say("    %5d B threshold search %6.0f/s: %6.0f/s forwarded" % (
                size, mid, p["forwarded_per_s"]))
            if p["forwarded_per_s"] < lf / 2:
                hi = mid
            else:
                lo = mid
    out.update({"threshold_pps": hi, "threshold_above_pps": lo, "threshold_trials": extra})
    if size == 200:  # board-facts.md's flood, for comparison
        out["reference"] = flood(rig, REF_FLOOD, size)
        say("    %5d B flood %6.0f/s (board-facts.md's): %d of %d forwarded" % (
            size, REF_FLOOD, out["reference"]["forwarded_during"], out["reference"]["sent"]))
    return out


def _repl_text(p: dict) -> str:
    if p.get("repl_answer_ms") is None:
        return "no answer"
    return "answered %.0f ms after typing%s" % (
        p["repl_answer_ms"], "" if p["repl_answered_during"] else " (after the flood)")


# -- profile by function ---------------------------------------------------------------------
class Symbols:
    """Function symbols of the firmware's ELF (pyelftools): pc -> function name."""

    def __init__(self, elf: Path):
        from elftools.elf.elffile import ELFFile

        rows, labels = [], []
        with open(elf, "rb") as f:
            e = ELFFile(f)
            for sym in e.get_section_by_name(".symtab").iter_symbols():
                kind, a = sym["st_info"]["type"], sym["st_value"] & ~1  # Thumb bit
                if kind == "STT_FUNC" and sym["st_size"] > 0:
                    rows.append((a, a + sym["st_size"], sym.name))
                elif sym["st_shndx"] != "SHN_UNDEF" and (kind == "STT_FUNC" or (
                        kind == "STT_NOTYPE" and sym["st_info"]["bind"] != "STB_LOCAL")):
                    labels.append((a, sym.name))  # assembler routines: no size
        rows.sort()
        labels.sort()
        self.starts = [r[0] for r in rows]
        self.rows = rows
        self.label_at = [x[0] for x in labels]
        self.labels = labels

    def name(self, pc: int) -> str:
        if pc == 0:
            return "(asleep: WFE/WFI)"
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and pc < self.rows[i][1]:
            return self.rows[i][2]
        if pc < 0x4000:
            return "(bootrom)"
        j = bisect.bisect_right(self.label_at, pc) - 1
        if j >= 0 and pc - self.label_at[j] < 0x1000 and (i < 0 or self.labels[j][0] >= self.rows[i][1]):
            return self.labels[j][1] + " (no size)"
        return "(unknown 0x%08x)" % (pc & ~0xFFF)


def elf_matches(elf: Path, fw) -> bool:
    """Is the ELF the one the UF2 was made from? Its flash segments against the image."""
    from elftools.elf.elffile import ELFFile

    image = fwmod.uf2_payload(fw.path.read_bytes())
    base = 0x10000000
    with open(elf, "rb") as f:
        e = ELFFile(f)
        segs = [s for s in e.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]
                and base <= s["p_paddr"] < base + len(image)]
        if not segs:
            return False
        for s in segs:
            off = s["p_paddr"] - base
            if image[off:off + s["p_filesz"]] != s.data():
                return False
    return True


def by_function(samples: dict[int, int], syms: Symbols) -> dict[str, int]:
    out: collections.Counter = collections.Counter()
    for pc, n in samples.items():
        out[syms.name(pc)] += n
    return dict(out)


def profile(rig: Rig, rate: float, size: int, syms: Symbols, seconds: float = PROFILE_S) -> dict:
    n = int(rate * seconds)
    start = rig.t + 10 * MS
    rig.board.profile_start(PROFILE_NS)
    tag = rig.offer(rate, n, size, start)
    rig.timed(start + n * S / rate, kind="profile")
    samples = rig.board.profile_stop()
    got = rig.taken() + rig.drain()
    f = forwarded(got, tag, size)
    funcs = by_function(samples, syms)
    return {"offered": rate, "sent": n, "forwarded": f["forwarded"], "interval_ns": PROFILE_NS,
            "samples": sum(funcs.values()), "functions": funcs}


# -- the contenders on flash -----------------------------------------------------------------
def base_config() -> dict:
    return json.loads((ROOT / "config.json").read_text())


def program(name: str, **consts) -> bytes:
    text = (PROGRAMS / name).read_text()
    for k, v in consts.items():
        text, n = re.subn(r"(?m)^%s = .*$" % k, "%s = %r" % (k, v), text)
        if n != 1:
            raise ValueError("%s: no constant %s" % (name, k))
    return text.encode()


# relay.* keys the relay contender runs with beyond the default config (--max-datagram).
RELAY_OVERRIDES: dict = {}


def flash_for(fw, key: str, spi: int, say, stats: bool = False) -> Path:
    """The contender's flash; stats: the relay with a stats line every STATS_S (for the
    floods), else its default config (a line every 10 s)."""
    relay = {"watchdog_ms": 0}
    if key == "relay":
        relay.update(RELAY_OVERRIDES)
    if stats and key == "relay":
        relay["stats_interval_s"] = STATS_S
    cfg = twin_config(base_config(), BOARD_IP, **relay)
    extra = None
    if key == "relay":
        cfg["nic"]["baudrate"] = spi
    else:
        empty = b"# bench-board: the contender is main.py alone\n"
        main = program("seed_main.py") if key == "seed" else program("bare_main.py", SPI_HZ=spi)
        extra = {"boot.py": empty, "main.py": main}
    w0 = time.monotonic()
    path = prepare.flash_with(fw, cfg, extra=extra)
    if time.monotonic() - w0 > 1:
        say("  flash for %s at %.2f MHz deployed in %.0f s" % (key, spi / 1e6,
                                                               time.monotonic() - w0))
    return path


# -- jobs: one board each ---------------------------------------------------------------------
class Job:
    def __init__(self, fw, key: str, spi: int, work: Path, quick: bool, parts: set[str]):
        self.fw, self.key, self.spi, self.quick, self.parts = fw, key, spi, quick, parts
        self.work = work / ("%s-%s-%d" % (fw.chip, key, spi))
        self.tag = "[%s %s %.2f MHz]" % (fw.chip, key, spi / 1e6)

    def say(self, msg: str) -> None:
        log("%s %s" % (self.tag, msg.strip()))

    def rig(self, suffix: str = "", stats: bool = False) -> Rig:
        flash = flash_for(self.fw, self.key, self.spi, self.say, stats)
        rig = Rig(self.fw, flash, Path(str(self.work) + suffix))
        rig.stats_lines = stats and self.key == "relay"
        return rig

    def run(self) -> dict:
        """The loss-free rates (default config), then the floods (a fresh board; the relay
        with a stats line a second)."""
        res: dict = {"sizes": {str(size): {} for size in SIZES}, "wall_s": {},
                     "speeds": [], "virtual_s": {}}
        parts = [("rate", False)]
        if "flood" in self.parts and self.key != "seed":
            parts.append(("flood", True))
        for part, stats in parts:
            w0 = time.monotonic()
            rig = self.rig("-" + part, stats)
            try:
                rig.start(READY[self.key])
                res["ready_virtual_s"] = rig.ready_vns / S
                for size in SIZES:
                    r = res["sizes"][str(size)]
                    if part == "rate":
                        r["rate"] = loss_free(rig, size, self.quick, self.say)
                        continue
                    lf = r["rate"]["loss_free_pps"] or (100.0 if self.quick else 0.0)
                    if lf:
                        r["flood"] = flood_curve(rig, lf, size, self.quick, self.say)
                st = res.setdefault("status", {})[part] = rig.board.status()
                res["spi_actual_hz"] = spi_actual(st)
            finally:
                rig.stop()
                res["speeds"] += rig.speeds
                res["wall_s"][part] = time.monotonic() - w0
                res["virtual_s"][part] = rig.t / S
        return res

    def repl(self, lfs: dict[str, float]) -> dict:
        """The relay stopped with Ctrl-C; floods at the relay's curve rates; REPL answers."""
        w0 = time.monotonic()
        rig = self.rig("-repl", stats=True)
        res: dict = {"sizes": {}}
        try:
            rig.start(READY["relay"])
            rig.board.interrupt()
            n0 = len(rig.board.lines)
            while not any(">>>" in x for x in rig.board.lines[n0:]) and rig.t < 600 * S:
                rig.run_to(rig.t + 100 * MS)
            rig.board.send("\r")
            rig.run_to(rig.t + 300 * MS)
            for size, lf in lfs.items():
                res["sizes"][size] = flood_curve(rig, lf, int(size), self.quick, self.say,
                                                 repl=True)
        finally:
            rig.stop()
            res["wall_s"] = time.monotonic() - w0
        return res

    def profile(self, rate: float, syms: Symbols) -> dict:
        w0 = time.monotonic()
        rig = self.rig("-profile")
        try:
            rig.start(READY[self.key])
            p = profile(rig, rate, 200, syms, PROFILE_S / 4 if self.quick else PROFILE_S)
            self.say("profile at %.0f/s x 200 B: forwarded %d/%d, %d samples" % (
                rate, p["forwarded"], p["sent"], p["samples"]))
        finally:
            rig.stop()
        p["speeds"] = rig.speeds
        p["wall_s"] = time.monotonic() - w0
        return p


def spi_actual(status: dict) -> float | None:
    """The SPI clock the firmware programmed, from the emulator's bus time per byte (8 bits)."""
    if not status.get("spi_busy_ns"):
        return None
    return round(8e9 * status["spi_bytes"] / status["spi_busy_ns"])


def speed_trial(fw, work: Path, lf: float, seconds: float, say) -> dict:
    """The emulator's speed alone on the machine: the relay forwarding at its loss-free rate."""
    rig = Rig(fw, flash_for(fw, "relay", DEFAULT_SPI, say), work / ("%s-speed" % fw.chip))
    try:
        rig.start(READY["relay"])
        load0 = Path("/proc/loadavg").read_text().split()[:3]
        n = int(lf * seconds)
        start = rig.t + 10 * MS
        tag = rig.offer(lf, n, 200, start)
        w0 = time.monotonic()
        rig.run_to(start + n * S / lf)
        wall = time.monotonic() - w0
        f = forwarded(rig.taken() + rig.drain(), tag, 200)
    finally:
        rig.stop()
    r = {"offered": lf, "sent": n, "forwarded": f["forwarded"], "virtual_s": n / lf,
         "wall_s": wall, "speed": n / lf / wall, "load_before": load0,
         "load_after": Path("/proc/loadavg").read_text().split()[:3]}
    say("emulator speed, the relay forwarding %.0f/s of 200 B for %.0f s: %.2fx real time "
        "(load %s)" % (lf, r["virtual_s"], r["speed"], " ".join(load0)))
    return r


def run_parallel(fns, jobs: int):
    if jobs <= 1:
        return [f() for f in fns]
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return [f.result() for f in [ex.submit(fn) for fn in fns]]


def bench_firmware(fw, elf: Path | None, args, work: Path) -> dict:
    parts = set(args.parts.split(","))
    spis = [int(float(x)) for x in args.spi.split(",")]
    res: dict = {"firmware": {"name": fw.name, "version": fw.version, "board": fw.board,
                              "chip": fw.chip, "sha256": fw.sha256},
                 "spi_hz": spis, "jobs": args.jobs, "contenders": {}, "wall_s": {}}
    log("bench-board: %s" % fw.describe())
    # Flash images first (deploys run the emulator in real time: not in parallel).
    jobs = []
    for spi in spis:
        for key in CONTENDERS:
            if key == "seed" and spi != spis[0]:
                continue
            jobs.append(Job(fw, key, spi, work, args.quick, parts))
    w0 = time.monotonic()
    for j in jobs:
        for stats in (False, True):
            flash_for(fw, j.key, j.spi, j.say, stats)
    res["wall_s"]["deploy"] = time.monotonic() - w0
    w0 = time.monotonic()
    for j, r in zip(jobs, run_parallel([j.run for j in jobs], args.jobs), strict=True):
        res["contenders"].setdefault(j.key, {})[str(j.spi)] = r
    res["wall_s"]["rate_and_flood"] = time.monotonic() - w0
    relay20 = res["contenders"]["relay"][str(spis[0])]
    bare20 = res["contenders"]["bare"][str(spis[0])]
    later = []
    if "repl" in parts:
        lfs = {size: (relay20["sizes"][size]["rate"]["loss_free_pps"] or 100.0)
               for size in relay20["sizes"]}
        later.append(("repl", Job(fw, "relay", spis[0], work, args.quick, parts), lfs))
    if "profile" in parts and elf is not None:
        syms = Symbols(elf)
        # At the bare loop's loss-free rate (the relay cannot keep up there), and at 0.9x the
        # relay's, where both forward everything: the same work per second for both.
        rate = bare20["sizes"]["200"]["rate"]["loss_free_pps"] or 100.0
        low = 0.9 * (relay20["sizes"]["200"]["rate"]["loss_free_pps"] or 100.0)
        for what, r in (("profile", rate), ("profile_low", low)):
            for key in ("bare", "relay"):
                later.append((what, Job(fw, key, spis[0], work, args.quick, parts), (r, syms)))
        res["elf"] = {"name": elf.name, "sha256": hashlib.sha256(elf.read_bytes())
                      .hexdigest()}
    elif "profile" in parts:
        res["profile_skipped"] = "no ELF given (--elf / ELF=): no profile by function"
    w0 = time.monotonic()

    def go(item):
        what, job, arg = item
        return job.repl(arg) if what == "repl" else job.profile(*arg)

    for (what, job, _), r in zip(later, run_parallel([lambda i=i: go(i) for i in later],
                                                      args.jobs), strict=True):
        if what == "repl":
            res["repl"] = r
        else:
            res.setdefault(what, {})[job.key] = r
    res["wall_s"]["repl_and_profile"] = time.monotonic() - w0
    w0 = time.monotonic()
    res["speed"] = speed_trial(fw, work, relay20["sizes"]["200"]["rate"]["loss_free_pps"] or 100.0,
                               1.0 if args.quick else 5.0, log)
    res["wall_s"]["speed"] = time.monotonic() - w0
    return res


# -- the run ---------------------------------------------------------------------------------
def environment() -> dict:
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    pkg = ROOT / "tools" / "emu" / "node_modules" / "rp2040js" / "package.json"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "kernel": platform.release(),
        "load": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "node": out([node_binary(), "--version"]),
        "rp2040js": json.loads(pkg.read_text())["version"] if pkg.exists() else None,
        "commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        # The relay as deployed is the working tree's: uncommitted changes to it, if any.
        "relay_changes": out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "lib",
                              "boot.py", "main.py", "config.json"]),
    }


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench.emu", description=__doc__.splitlines()[0])
    p.add_argument("--firmware", action="append", default=[], metavar="UF2",
                   help="the official image(s); default $%s (paths separated by ':')"
                   % fwmod.ENV)
    p.add_argument("--elf", action="append", default=[], metavar="ELF",
                   help="the firmware's ELF (matched to its image by content): the profile")
    p.add_argument("--quick", action="store_true", help="one short trial per contender")
    p.add_argument("--spi", default=str(DEFAULT_SPI), metavar="HZ,...",
                   help="SPI clocks for the bare loop and the relay (nic.baudrate), e.g. "
                   "20000000,31250000,62500000; the first is the reference (default %d)"
                   % DEFAULT_SPI)
    p.add_argument("--parts", default="rate,flood,repl,profile",
                   help="comma-separated: rate,flood,repl,profile (default all)")
    p.add_argument("--jobs", type=int, default=1, help="boards emulated at once (default 1)")
    p.add_argument("--max-datagram", type=int, default=None, metavar="N",
                   help="the relay's relay.max_datagram, 1-8192 (default: the config's, 1472); its "
                   "recvfrom buffer is N+1 bytes")
    p.add_argument("--out", default=None,
                   help="folder for bench-board.json and bench.md (default docs/, quick: "
                   "build/bench-board-quick/)")
    p.add_argument("--render", action="store_true",
                   help="only write bench.md's section again from bench-board.json")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from . import emu_report

    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.max_datagram is not None:
        if not 1 <= args.max_datagram <= 8192:
            log("bench-board: --max-datagram %d is out of range (1-8192)" % args.max_datagram)
            return 2
        RELAY_OVERRIDES["max_datagram"] = args.max_datagram
    out = Path(args.out) if args.out else (
        ROOT / "build" / "bench-board-quick" if args.quick else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    jpath = out / "bench-board.json"
    if args.render:
        res = compact(json.loads(jpath.read_text()))
        jpath.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        emu_report.write(res, out)
        return 0
    paths = [Path(p) for x in args.firmware for p in x.split(os.pathsep) if p] or \
        fwmod.configured()
    if not paths:
        log("bench-board: no firmware image: " + fwmod.HOW_TO_GET)
        return 2
    try:
        fws = [fwmod.identify(p) for p in paths]
    except fwmod.FirmwareError as e:
        log("bench-board: %s" % e)
        return 2
    elfs = [Path(p) for x in args.elf for p in x.split(os.pathsep) if p]
    w_all = time.monotonic()
    res = {"mode": "quick" if args.quick else "full", "environment": environment(),
           "method": method(), "runs": {}}
    if jpath.exists() and not args.quick:  # keep the other boards' results of earlier runs
        try:
            old = json.loads(jpath.read_text())
            res["runs"].update(old.get("runs", {}))
        except ValueError:
            pass
    work = ROOT / "build" / "bench-board-work"
    for fw in fws:
        elf = next((e for e in elfs if elf_matches(e, fw)), None)
        if elfs and elf is None:
            log("bench-board: none of the ELF files matches %s: no profile" % fw.name)
        r = bench_firmware(fw, elf, args, work)
        r["environment"] = res["environment"]
        r["rerun"] = rerun_command(args, fw, elf)
        r["relay_overrides"] = dict(RELAY_OVERRIDES)
        res["runs"][fw.board] = r
    res["wall_s"] = time.monotonic() - w_all
    res["environment"]["load_end"] = Path("/proc/loadavg").read_text().split()[:3]
    jpath.write_text(json.dumps(compact(res), indent=1, sort_keys=True) + "\n")
    emu_report.write(res, out)
    log("bench-board: wrote %s and %s (%.0f s)" % (jpath, out / "bench.md", res["wall_s"]))
    return 0


def compact(res: dict) -> dict:
    """What bench-board.json keeps: the emulator's speed per board as sorted values (forwarding
    windows only), and functions with fewer than MIN_SAMPLES samples folded into one row."""
    for run in res["runs"].values():
        for per in run["contenders"].values():
            for r in per.values():
                if "speeds" in r:
                    r["speed_values"] = sorted(round(x["speed"], 3) for x in r.pop("speeds")
                                               if x["kind"] in ("trial", "flood"))
        for which in ("profile", "profile_low"):
            for p in run.get(which, {}).values():
                p.pop("speeds", None)
                p.setdefault("poll_samples", sum(n for f, n in p["functions"].items()
                                                 if "poll" in f or "ioctl" in f))
                small = [f for f, n in p["functions"].items() if n < MIN_SAMPLES]
                if small:
                    rest = sum(p["functions"].pop(f) for f in small)
                    p["functions"][OTHER] = p["functions"].get(OTHER, 0) + rest
    return res


def rerun_command(args, fw, elf) -> str:
    cmd = "make bench-board FIRMWARE=path/to/%s" % fw.name
    if elf is not None:
        cmd += " ELF=path/to/%s" % elf.name
    if args.spi != str(DEFAULT_SPI):
        cmd += " SPI=%s" % args.spi
    extra = ["--quick"] if args.quick else []
    if args.parts != "rate,flood,repl,profile":
        extra += ["--parts", args.parts]
    if args.max_datagram is not None:
        extra += ["--max-datagram", str(args.max_datagram)]
    if extra:
        cmd += ' ARGS="%s"' % " ".join(extra)
    return cmd


def method() -> dict:
    return {"start_pps": START, "factor": FACTOR, "explore_datagrams": EXPLORE,
            "datagrams": N, "bisect_steps": BISECT, "max_loss": MAX_LOSS,
            "flood_x": FLOOD_X, "flood_s": FLOOD_S, "threshold_steps": THRESHOLD_STEPS,
            "probe_rate": PROBE_RATE, "probe_n": PROBE_N, "profile_s": PROFILE_S,
            "profile_interval_ns": PROFILE_NS, "stats_interval_s": STATS_S,
            "board_ip": BOARD_IP, "route": "%s:%d -> %s:%d" % (IN_GROUP, PORT, OUT_GROUP, PORT)}


if __name__ == "__main__":
    sys.exit(main())
