"""The four measurements, each for one contender. Run inside bench.ns's namespace."""

from __future__ import annotations

import re
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from tools import stream
from tools.twin import mpy

from . import procs, traffic
from .procs import Contender, Running


@dataclass
class Settings:
    quick: bool
    n1: int  # callgrind: datagrams in the short run
    n2: int  # ... and in the long run (slope between the two)
    heap_n: int
    lat_rate: float
    lat_n: int
    explore_s: float  # rate search: trial length while doubling
    confirm_s: float  # ... while bisecting (the "10 s" of the definition)
    start_rate: float
    factor: float
    bisect_steps: int
    max_loss: float = 0.001

    @classmethod
    def full(cls) -> Settings:
        return cls(False, 1000, 11000, 3000, 1000.0, 3000, 2.0, 10.0, 1000.0, 2.0, 5)

    @classmethod
    def quick_mode(cls) -> Settings:
        return cls(True, 20, 1020, 600, 1000.0, 200, 0.3, 0.5, 2000.0, 4.0, 1)


def start(c: Contender, prefix: list[str] | None = None, heap_n: int | None = None) -> Running:
    argv = (prefix or []) + c.argv(heap_n)
    if c.key == "socat":
        return Running(argv, ready_text=None)
    return Running(argv, timeout=300, lib=c.lib, native=c.native)


def wait_forwarding(c: Contender, snd: traffic.Sender, rcv: traffic.Receiver,
                    run: Running, timeout: float = 120) -> None:
    """socat says nothing when ready: send probes until one comes out (they are
    counted like any other datagram by the caller, which uses rcv.count)."""
    if c.key != "socat":
        return
    t_end = time.monotonic() + timeout
    seq = 10_000_000
    while time.monotonic() < t_end:
        if run.proc.poll() is not None:
            raise RuntimeError("socat exited: %s" % "\n".join(run.tail))
        snd.one(seq)
        seq += 1
        if rcv.wait_one(1.0) is not None:
            rcv.drain(1.0)
            return
    raise RuntimeError("socat never forwarded a probe")


# -- instructions per datagram: callgrind slope -------------------------------------------------
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.M)


def callgrind_total(path: Path) -> int:
    m = _TOTALS.search(path.read_bytes())
    if not m:
        raise RuntimeError("no totals in %s" % path)
    return int(m.group(1))


def instructions(c: Contender, s: Settings, work: Path) -> dict:
    runs = []
    for n in (s.n1, s.n2):
        out = work / ("callgrind.%s.%d.out" % (c.key, n))
        log = work / ("callgrind.%s.%d.log" % (c.key, n))
        vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out,
              "--log-file=%s" % log]
        rcv = traffic.Receiver(c.outputs)
        snd = traffic.Sender(c.inputs)
        run = None
        try:
            run = start(c, vg)
            wait_forwarding(c, snd, rcv, run)
            got = snd.lockstep(n, rcv, timeout=10.0)
            rcv.drain(0.3)
            run.stop(signal.SIGTERM, timeout=120)
        finally:
            if run is not None:
                run.stop(signal.SIGKILL)
            snd.close()
            rcv.close()
        runs.append({"sent": n, "came_out": got, "forwarded": rcv.count,
                     "instructions": callgrind_total(out)})
    a, b = runs
    slope = (b["instructions"] - a["instructions"]) / (b["forwarded"] - a["forwarded"])
    lost = sum(r["sent"] - r["came_out"] for r in runs)
    return {"per_datagram": slope, "runs": runs, "lost": lost}


# -- heap bytes per datagram --------------------------------------------------------------------
_HEAP = re.compile(r"^HEAP (-?\d+) (\d+)")


def _heap_result(run: Running) -> dict:
    for line in run.tail:
        m = _HEAP.match(line)
        if m:
            b, n = int(m.group(1)), int(m.group(2))
            return {"bytes": b, "datagrams": n, "per_datagram": b / n if n else float("nan"),
                    "notes": [t for t in run.tail if t.startswith("TICKS")]}
    raise RuntimeError("no HEAP line:\n%s" % "\n".join(run.tail))


def heap(c: Contender, s: Settings) -> dict:
    rcv = traffic.Receiver(c.outputs)
    snd = traffic.Sender(c.inputs)
    run = start(c, heap_n=s.heap_n)
    try:
        # Ours samples the heap on its 100 ms tick: spread the datagrams over
        # enough ticks (a 0.3 ms gap after each).
        gap = 0.0003 if c.key.startswith("ours") else 0.0
        snd.lockstep(s.heap_n, rcv, timeout=10.0, gap=gap)
        run.wait(60)
        return _heap_result(run)
    finally:
        run.stop(signal.SIGKILL)
        snd.close()
        rcv.close()


def heap_recv_only(s: Settings, bufsize: int) -> dict:
    """recvfrom(bufsize) alone: what the socket layer allocates per datagram."""
    (g, p), = procs.in_groups(1)
    argv = [*mpy.micropython_argv(), "-X", "heapsize=256M", str(procs.MP_PROGRAM),
            "heap-recv", g, str(p), str(s.heap_n), str(bufsize)]
    snd = traffic.Sender([(g, p)])
    run = Running(argv, ready_text=None)
    try:
        t_end = time.monotonic() + 60
        i = 0
        while run.proc.poll() is None and time.monotonic() < t_end:
            snd.one(i)  # one warm-up datagram, then n measured; extra ones are ignored
            i += 1
            time.sleep(0.0005)
        run.wait(10)
        return _heap_result(run)
    finally:
        run.stop(signal.SIGKILL)
        snd.close()


# -- all relays up at once ----------------------------------------------------------------------
class Fleet:
    """Every contender running at once, each on its own groups (slot), idle between
    its turns: the side-by-side measurements take turns, so load from elsewhere on
    the shared machine falls on all contenders alike."""

    def __init__(self, contenders: list[Contender]):
        self.runs: dict[str, tuple[Contender, traffic.Sender, Running]] = {}
        self.slots = len(contenders)
        try:
            for slot, c in enumerate(contenders):
                c.slot = slot
                snd = traffic.Sender(c.inputs)
                run = start(c)
                self.runs[c.key] = (c, snd, run)
                if c.key == "socat":
                    rcv = traffic.Receiver(c.outputs)
                    try:
                        wait_forwarding(c, snd, rcv, run)
                    finally:
                        rcv.close()
            time.sleep(0.3)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for c, snd, run in self.runs.values():
            run.stop()
            snd.close()
            c.slot = 0
        self.runs = {}

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- latency ------------------------------------------------------------------------------------
def _latencies(snd: traffic.Sender, rcv: traffic.Receiver, rate: float, n: int) -> dict:
    rcv.drain(0.1)
    before = rcv.count
    snd.timed(rate, n)
    got = rcv.drain(0.5)
    lat = []
    for data, t_rx in got:
        if t_rx is None or len(data) < 16:
            continue
        _seq, t_tx = traffic.struct.unpack("!QQ", data[:16])
        lat.append((t_rx - t_tx) / 1000.0)  # microseconds
    lat.sort()
    return {"sent": n, "received": rcv.count - before, "p50_us": _percentile(lat, 50),
            "p99_us": _percentile(lat, 99)}


def _percentile(sorted_values: list[float], p: float) -> float:
    """tools.stream.percentile, NaN where it has nothing (the report prints a dash)."""
    v = stream.percentile(sorted_values, p)
    return float("nan") if v is None else v


LAT_ROUNDS = 3


def latencies(fleet: Fleet, s: Settings, log=print) -> tuple[dict, dict[str, dict]]:
    """(no relay, {key: through the relay}): LAT_ROUNDS rounds, the contenders (and the
    sender straight to the receiver) taking turns; per round p50/p99, reported as the
    median over the rounds (one round hit by noise elsewhere does not decide it)."""
    direct_groups = procs.out_groups(1, fleet.slots)
    legs = {"direct": (traffic.Sender(direct_groups), traffic.Receiver(direct_groups))}
    try:
        for key, (c, _snd, _run) in fleet.runs.items():
            legs[key] = (traffic.Sender(c.inputs), traffic.Receiver(c.outputs))
        rounds: dict[str, list[dict]] = {k: [] for k in legs}
        per = max(1, s.lat_n // LAT_ROUNDS)
        for _ in range(LAT_ROUNDS):
            for key, (snd, rcv) in legs.items():
                rounds[key].append(_latencies(snd, rcv, s.lat_rate, per))
        out = {}
        for key, rs in rounds.items():
            out[key] = {
                "sent": sum(r["sent"] for r in rs),
                "received": sum(r["received"] for r in rs),
                "p50_us": statistics.median(r["p50_us"] for r in rs),
                "p99_us": statistics.median(r["p99_us"] for r in rs),
                "rounds": rs,
            }
            log("  [%s] latency p50 %.1f us p99 %.1f us (%d/%d)" % (
                key, out[key]["p50_us"], out[key]["p99_us"], out[key]["received"],
                out[key]["sent"]))
        direct = out.pop("direct")
        return direct, out
    finally:
        for snd, rcv in legs.values():
            snd.close()
            rcv.close()


# -- loss-free rate -----------------------------------------------------------------------------
def trial(snd: traffic.Sender, rate: float, seconds: float) -> dict:
    """Offer `rate` for `seconds`; forwarded = this namespace's UDP OutDatagrams
    minus what the sender sent (no receiver runs: it would compete for the CPUs)."""
    c0 = traffic.udp_counters()
    sent, took = snd.paced(rate, seconds)
    # Let the relay drain its socket queue: until the counter stands still for 0.2 s
    # (a backlog left over would count for the next trial).
    c1 = traffic.udp_counters()
    t_end = time.monotonic() + 5.0
    while time.monotonic() < t_end:
        time.sleep(0.2)
        c2 = traffic.udp_counters()
        if c2["OutDatagrams"] == c1["OutDatagrams"]:
            break
        c1 = c2
    forwarded = (c1["OutDatagrams"] - c0["OutDatagrams"]) - sent
    loss = 1.0 - forwarded / sent if sent else 1.0
    return {"offered": rate, "sent": sent, "achieved": sent / took, "forwarded": forwarded,
            "loss": loss, "rcvbuf_errors": c1["RcvbufErrors"] - c0["RcvbufErrors"]}


def rate_search(start_rate: float, factor: float, explore, confirm, bisect_steps: int):
    """The rate search as a generator: yields (rate, trial length: `explore` while
    multiplying, `confirm` after), is sent (passed, sender_limited), returns (loss-free
    rate, first failing rate, sender_limited). The host's trials are seconds long, the
    emulated board's (bench/emu.py) a number of datagrams."""
    good, bad, limited = 0.0, None, False
    r = start_rate
    while r < 1e7:  # 1: multiply until a trial fails
        passed, lim = yield r, explore
        if passed:
            good = r
            r *= factor
            continue
        bad, limited = r, lim  # limited: the sender, not the relay, fell short at `bad`
        break
    while good:  # 2: the last good rate must hold at full length
        passed, lim = yield good, confirm
        if passed:
            break
        bad, limited = good, lim
        good = good / factor if good / factor >= start_rate / 8 else 0.0
    for _ in range(bisect_steps if good and bad else 0):  # 3: bisect
        mid = (good + bad) / 2
        passed, lim = yield mid, confirm
        if passed:
            good = mid
        else:
            bad, limited = mid, lim
    return good, bad, limited


def _search(s: Settings):
    return (yield from rate_search(s.start_rate, s.factor, s.explore_s, s.confirm_s,
                                   s.bisect_steps))


def rates(fleet: Fleet, s: Settings, log=print) -> dict[str, dict]:
    """Loss-free rate of every contender, searched side by side: the searches take
    turns trial by trial. A failing trial gets one retry (noise elsewhere on the
    machine only ever makes a relay look slower)."""
    out: dict[str, dict] = {}
    active = {}
    for key in fleet.runs:
        g = _search(s)
        active[key] = (g, next(g))
        out[key] = {"trials": []}
    while active:
        for key in list(active):
            _c, snd, _run = fleet.runs[key]
            g, (r, seconds) = active[key]
            passed = lim = False
            for _try in range(2):
                t = trial(snd, r, seconds)
                out[key]["trials"].append(t)
                lim = t["achieved"] < 0.97 * r
                log("    %-12s %9.0f/s offered for %gs: loss %.3f%%%s" % (
                    key, r, seconds, 100 * t["loss"], " (sender-limited)" if lim else ""))
                passed = t["loss"] < s.max_loss and not lim
                if passed or lim:
                    break
            try:
                active[key] = (g, g.send((passed, lim)))
            except StopIteration as done:
                good, bad, limited = done.value
                out[key].update({"loss_free_pps": good, "first_failing_pps": bad,
                                 "sender_limited": limited})
                del active[key]
                log("  [%s] loss-free rate: %.0f datagrams/s%s" % (
                    key, good, " (the sender fell short above it)" if limited else ""))
    return out
