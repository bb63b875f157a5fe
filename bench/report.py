"""Results -> DIR/bench.md (tables, method, board model) and DIR/bench.png (plot)."""

from __future__ import annotations

import math
from pathlib import Path

from . import board

ORDER = ["seed", "bare", "socat", "ours1", "ours1_bytecode", "ours1_before", "ours4", "bare_poll"]
TARGETS = {
    "instructions_abs": 10_000,
    "instructions_rel": 1.25,
    "heap_extra": 64,
    "rate_rel": 0.8,
}


def _f(v, fmt="{:,.0f}", none="–"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return fmt.format(v)


def _get(res, key, *path):
    d = res["contenders"].get(key)
    for p in path:
        if d is None:
            return None
        d = d.get(p)
    return d


def summary(res: dict) -> dict:
    """Per contender: the headline numbers (None where not measured)."""
    out = {}
    recv = (res.get("heap_recv_only") or {}).get("1473", {}).get("per_datagram")
    direct = res.get("latency_direct") or {}
    keys = sorted(res["contenders"], key=lambda k: ORDER.index(k) if k in ORDER else 99)
    for key in keys:
        c = res["contenders"][key]
        heap = _get(res, key, "heap", "per_datagram")
        lat = c.get("latency") or {}
        out[key] = {
            "label": c["label"],
            "short": c.get("short") or key,
            "instructions": _get(res, key, "instructions", "per_datagram"),
            "heap": heap,
            "heap_extra": None if heap is None or recv is None else heap - recv,
            "rate": _get(res, key, "rate", "loss_free_pps"),
            "rate_limited": bool(_get(res, key, "rate", "sender_limited")),
            "p50": lat.get("p50_us"),
            "p99": lat.get("p99_us"),
            "p50_added": None if not lat or "p50_us" not in direct
            else lat["p50_us"] - direct["p50_us"],
            "p99_added": None if not lat or "p99_us" not in direct
            else lat["p99_us"] - direct["p99_us"],
        }
    bare = out.get("bare", {})
    for s in out.values():
        s["instr_x_bare"] = (s["instructions"] / bare["instructions"]
                             if s["instructions"] and bare.get("instructions") else None)
        s["rate_x_bare"] = (s["rate"] / bare["rate"] if s["rate"] and bare.get("rate") else None)
    return out


def targets(sm: dict) -> list[tuple[str, str, str, bool | None]]:
    rows = []
    for key in ("ours1", "ours4"):
        s = sm.get(key)
        if not s:
            continue
        name = s["label"]
        if s["instructions"] is not None:
            ok = s["instructions"] <= TARGETS["instructions_abs"]
            rows.append((name, "≤ 10,000 instructions/datagram", _f(s["instructions"]), ok))
        if s["instr_x_bare"] is not None:
            ok = s["instr_x_bare"] <= TARGETS["instructions_rel"]
            rows.append((name, "≤ 1.25× the bare loop's instructions",
                         _f(s["instr_x_bare"], "{:.2f}×"), ok))
        if s["heap_extra"] is not None:
            ok = s["heap_extra"] <= TARGETS["heap_extra"]
            rows.append((name, "≤ 64 heap bytes/datagram beyond recvfrom",
                         _f(s["heap_extra"], "{:+,.0f} B"), ok))
        if s["rate_x_bare"] is not None:
            ok = s["rate_x_bare"] >= TARGETS["rate_rel"]
            rows.append((name, "loss-free rate ≥ 0.8× the bare loop's",
                         _f(s["rate_x_bare"], "{:.2f}×"), ok))
    return rows


def _results_table(res: dict, sm: dict) -> list[str]:
    lines = [
        "| contender | instructions / datagram | × bare | heap B / datagram "
        "(beyond recvfrom) | loss-free rate (datagrams/s) | × bare | latency p50 / p99 (µs) "
        "| added by the relay p50 / p99 (µs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _key, s in sm.items():
        heap = "–" if s["heap"] is None else "%s (%s)" % (
            _f(s["heap"]), _f(s["heap_extra"], "{:+,.0f}"))
        rate = _f(s["rate"]) + (" (sender-limited: ≥)" if s["rate_limited"] else "")
        lines.append("| %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |" % (
            s["label"], _f(s["instructions"]), _f(s["instr_x_bare"], "{:.2f}"), heap, rate,
            _f(s["rate_x_bare"], "{:.2f}"), _f(s["p50"], "{:.0f}"), _f(s["p99"], "{:.0f}"),
            _f(s["p50_added"], "{:+.0f}"), _f(s["p99_added"], "{:+.0f}")))
    return lines


def _board_section(res: dict, sm: dict) -> list[str]:
    seed = (sm.get("seed") or {}).get("instructions")
    ours = (sm.get("ours1") or {}).get("instructions")
    if not seed or not ours:
        return ["(needs the seed's and ours' instruction counts: run without --skip "
                "instructions)"]
    m = board.model({"seed": seed, "ours": ours})
    res["board_model"] = m
    lo, hi = board.CYCLES_PER_X86_RANGE
    lines = [
        "Per forwarded datagram on an RP2040 at %d MHz with a W5100S in MACRAW mode (lwIP on "
        "the RP2040). Interpreter time = measured x86-64 instructions × %.0f Cortex-M0+ cycles "
        "per instruction (range %.0f–%.0f: reasoned, not measured — ARMv6-M needs ~1.3–1.5× "
        "the instructions of x86-64 for interpreter code and ~1.5–2 cycles each on a core "
        "whose loads, stores and taken branches take 2 cycles, running from XIP flash behind "
        "a 16 KB cache). The host count has no network stack in it (the kernel does that "
        "work); lwIP's share on the board is taken as %s cycles." % (
            board.CPU_HZ // 1_000_000, board.CYCLES_PER_X86, lo, hi, _f(board.LWIP_CYCLES)),
        "",
        "SPI per datagram: the frame read (2-byte MACRAW header + frame, two bursts with a "
        "3-byte command each), the frame written (one burst), and ~%d single-register "
        "accesses of 4 bytes each (status, pointers, commands, the Sn_IR SEND_OK poll, "
        "interrupt acknowledge), each also costing ~%.0f µs of CPU besides its bits; the "
        "driver waits for the chip to put the frame on the 100 Mbit/s wire." % (
            board.REG_ACCESSES, board.REG_SW_S * 1e6),
        "",
        "| code | SPI | INTN | payload | interpreter | lwIP | SPI bits | register sw | wire "
        "wait | USB print | per datagram | CPU-bound | poll cap | **expected** |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in m["cases"]:
        lo_ms, hi_ms = c["per_datagram_ms_range"]
        e_lo, e_hi = c["expected_pps_range"]
        lines.append(
            "| %s | %.0f MHz | %s | %d B | %.2f ms | %.3f ms | %.2f ms | %.2f ms | %.3f ms | "
            "%s | %.2f ms (%.2f–%.2f) | %.0f/s | %s | **%.0f/s** (%.0f–%.0f) |" % (
                c["code"], c["spi_mhz"], "yes" if c["intn"] else "no (64 ms poll)",
                c["payload"], c["interp_ms"], c["lwip_ms"], c["spi_ms"], c["reg_sw_ms"],
                c["wire_ms"], "%.2f ms" % c["usb_ms"] if c["usb_ms"] else "–",
                c["per_datagram_ms"], lo_ms, hi_ms, c["cpu_bound_pps"],
                "%.1f/s" % c["poll_cap_pps"] if c["poll_cap_pps"] else "–",
                c["expected_pps"], e_lo, e_hi))
    seed_case = m["cases"][0]
    ours_case = m["cases"][2]
    lines += [
        "",
        "Reading it: the seed's set-up (2 MHz SPI, no INTN wire, two prints per datagram) is "
        "capped by the 64 ms poll: each poll hands lwIP every frame the chip holds, the "
        "socket keeps %d, the rest are dropped, so at most %d datagrams per %d ms ≈ %.0f/s "
        "leave, whatever the CPU could do (%.0f/s for 200-byte datagrams). Ours (20 MHz, "
        "INTN) is bound by the CPU and the SPI bus: ≈ %.0f/s for 200-byte and ≈ %.0f/s for "
        "1472-byte datagrams. The 4-deep queue still means a burst of more than 4 datagrams "
        "arriving faster than that is cut, INTN or not; with the 64 ms poll even ours is "
        "capped at %.0f/s (rows with INTN no)." % (
            board.QUEUE, board.QUEUE, board.POLL_MS, board.QUEUE * 1000 / board.POLL_MS,
            seed_case["cpu_bound_pps"], ours_case["expected_pps"],
            m["cases"][3]["expected_pps"], board.QUEUE * 1000 / board.POLL_MS),
    ]
    return lines


def markdown(res: dict) -> str:
    sm = summary(res)
    mach = res["machine"]
    s = res["settings"]
    quick = res["mode"] == "quick"
    recv = res.get("heap_recv_only") or {}
    direct = res.get("latency_direct") or {}
    ceil = res.get("sender_ceiling_pps") or {}
    L = [
        "# Benchmark: the forward path side by side",
        "",
        "Generated by `make bench` (`python -m bench`; quick mode: `make bench-quick`). "
        "Do not edit by hand: rerun it. The host benchmark comes first; the firmware on the "
        "emulated board is [at the end](#on-the-emulated-board) (`make bench-board`).",
        "",
        "| | |",
        "|---|---|",
        "| date | %s |" % mach["date"],
        "| machine | %s CPUs, %s, kernel %s, load average at start %s |" % (
            mach["nproc"], mach["cpu"], mach["kernel"], " ".join(mach["load"])),
        "| MicroPython | %s (unix port, `.venv/bin/micropython`) |" % mach["micropython"],
        "| tools | CPython %s, %s, %s |" % (mach["python"], mach.get("valgrind") or "no valgrind",
                                          mach.get("socat") or "no socat"),
        "| mode | %s%s |" % (res["mode"], " — short runs, numbers not meaningful" if quick else ""),
        "",
    ]
    if res.get("skipped"):
        L += ["Skipped: " + "; ".join(res["skipped"]), ""]
    L += ["## Results", ""]
    L += _results_table(res, sm)
    L += [
        "",
        "Heap: `recvfrom(1473)` alone allocates %s B per datagram (`recvfrom(1024)`: %s B); "
        "the bracket is what the contender adds on top. Latency without any relay (sender "
        "straight to the receiver): p50 %s µs, p99 %s µs. The sender alone offers %s "
        "datagrams/s (1 group) and %s (4 groups)." % (
            _f((recv.get("1473") or {}).get("per_datagram")),
            _f((recv.get("1024") or {}).get("per_datagram")),
            _f(direct.get("p50_us"), "{:.0f}"), _f(direct.get("p99_us"), "{:.0f}"),
            _f(ceil.get("1")), _f(ceil.get("4"))),
        "",
        "![benchmark plot](bench.png)",
        "",
        "## Targets (ours)",
        "",
        "| contender | target | measured | met |",
        "|---|---|---:|---|",
    ]
    for name, what, val, ok in targets(sm):
        L.append("| %s | %s | %s | %s |" % (name, what, val, "yes" if ok else "**no**"))
    before = sm.get("ours1_before")
    if before and sm.get("ours1"):
        a = sm["ours1"]
        L += [
            "",
            "## The hot-path change (commit 5402cdf), before and after",
            "",
            "`%s` is lib/relay.py as it was before (`--before REV`), measured in the same run."
            % before["label"],
            "",
            "| | before | after |",
            "|---|---:|---:|",
            "| instructions / datagram | %s | %s |" % (_f(before["instructions"]),
                                                     _f(a["instructions"])),
            "| heap B / datagram beyond recvfrom | %s | %s |" % (
                _f(before["heap_extra"], "{:+,.0f}"), _f(a["heap_extra"], "{:+,.0f}")),
            "| loss-free rate (datagrams/s) | %s | %s |" % (_f(before["rate"]), _f(a["rate"])),
            "| latency p50 / p99 (µs) | %s / %s | %s / %s |" % (
                _f(before["p50"], "{:.0f}"), _f(before["p99"], "{:.0f}"),
                _f(a["p50"], "{:.0f}"), _f(a["p99"], "{:.0f}")),
            "",
            "What changed (counters, guards and caps behave the same; "
            "`host_tests/test_bench.py` replays a datagram script with every kind of drop "
            "and compares the counters with those of the old loop):",
            "",
            "- The own-address guard and the allow-list cost one dict lookup per datagram: "
            "the verdict is cached per address exactly as `recvfrom` returns it, so looking "
            "it up allocates nothing (the old allow-list check sliced the address: +96 B and "
            "a Python call per datagram). The cache is emptied when the own address changes.",
            "- The loop counted only the token and the bytes, `rx` and `tx` were derived in "
            "`fold()` from the tokens taken (since replaced: every counter is counted where "
            "it happens, docs/architecture.md).",
            "- Bound `recvfrom` per route, `len` and the running flag as locals.",
            "- Fixed on the way: a route with `rate_pps: 0` (no cap) stopped forwarding after "
            "2^29 datagrams; its bucket is now topped up every tick.",
            "",
            "Why ours still costs more than the bare loop: the bare loop is `recvfrom` + "
            "`sendto` and nothing else (recvfrom alone is ~6,000 of its instructions: a "
            "1473-byte buffer allocated and freed, the datagram copied and hashed, the "
            "address and a tuple). A loop that serves several sockets needs `select.poll` "
            "(the bare loop behind a poll, a calibration point, costs %s), and every guard, "
            "cap and counter is a few MicroPython bytecodes at ~50–60 x86 instructions "
            "each: about 50 bytecodes per datagram remain, none of which can go without "
            "dropping a feature. The native emitter (`@micropython.native`) would remove "
            "the bytecode dispatch but needs `mpy-cross -march=armv6m` in the deploy step. "
            "On the host, the rate gap of 1 route is mostly the poll system call (3 system "
            "calls per datagram against the bare loop's 2); with 4 routes one poll serves "
            "several sockets. Reading a socket until it is empty would save polls under "
            "load but costs an exception per wake-up when it is not loaded, and on the "
            "board a poll is a function call, not a system call: not done." % (
                _f((sm.get("bare_poll") or {}).get("instructions"))),
        ]
    L += [
        "",
        "## Method",
        "",
        "Everything runs inside a network namespace the benchmark creates for itself "
        "(`unshare --net`, root): only `lo` exists, set up with `multicast on`, the "
        "addresses 198.18.0.1 (sender, receiver) and 198.18.0.2 (what ours believes is "
        "its own address, for the own-address guard), and a `224.0.0.0/4` route. Input "
        "groups 224.0.10.1–4:50000, outputs 224.0.10.11–14:50001, 200-byte datagrams.",
        "",
        "Contenders, each its own process:",
        "",
        "- **seed**: the WIZnet tutorial's loop on the unix port: `recvfrom(1024)`, "
        "`print(f\"Received: {message} from {addr}\")`, `sendto` on the same socket, "
        "`print(\"Data sent.\")` (getaddrinfo sockaddrs, the 8-byte mreq). stdout goes to "
        "/dev/null (a board without a terminal), so the prints cost their formatting, "
        "not a terminal.",
        "- **bare**: `data, addr = rx.recvfrom(1473)`; `tx.sendto(data, dst)` on a separate "
        "transmit socket, nothing else.",
        "- **socat**: `socat -u UDP4-RECV:50000,bind=G,reuseaddr,ip-add-membership=G:IF,"
        "rcvbuf=4194304 UDP4-SENDTO:G2:50001,ip-multicast-if=IF,ip-multicast-ttl=1` (one "
        "process, no fork). UDP4-RECV, not UDP4-RECVFROM: without `fork`, UDP4-RECVFROM "
        "forwards one datagram and exits (tried), with `fork` it starts a process per "
        "datagram; UDP4-RECV is socat's fork-less receive from any sender.",
        "- **ours**: lib/relay.py `Relay` unchanged, driven by `bench/mp_contenders.py` "
        "with a config through lib/config.py `validate(..., max_udp_sockets=8)` (the board "
        "has 5 sockets; the host more): every route with an allow-list "
        "(`198.18.0.0/15`), a rate cap (validated at 100,000 pps, then ×100 with burst = "
        "rate/5 so it never binds on the host: the same token check per datagram), "
        "`max_datagram` 1472, counters, the own-address guard (stand-in NIC reporting "
        "198.18.0.2), stats line every 10 s, discovery on (its responder is not started: "
        "no discovery traffic is sent). 4 routes: the sender round-robins over the 4 groups.",
        "",
        "**Instructions per forwarded datagram**: valgrind `--tool=callgrind` on the relay "
        "process only (the sender and receiver are other processes), total Ir, for %s and "
        "%s datagrams; the slope between the two runs cancels start-up (CPython wrapper, "
        "interpreter, imports, config). The sender sends one datagram, waits until the "
        "receiver has it, then the next (lockstep), so nothing queues or is lost under "
        "valgrind; the receiver's count is the divisor and every run checks that all came "
        "out. A 10,000-datagram span includes the unix port's garbage collections at their "
        "natural rate (a 1,000-datagram span moved by ±1,000 depending on whether a "
        "collection fell inside). Counts are stable to about ±1%% between runs." % (
            _f(s["n1"]), _f(s["n2"])),
        "",
        "**Heap bytes per forwarded datagram**: `gc.disable()`, then `gc.mem_alloc()` before "
        "and after %s lockstep datagrams. Ours runs `Relay.run()` unchanged with a stand-in "
        "watchdog, which the relay feeds on its 100 ms tick (outside the per-datagram path; "
        "it allocates nothing): it notes forwarded count and `mem_alloc()` and stops the "
        "relay once all are through (no stats line in this run: its `gc.collect()` would "
        "free what the window counts); the window runs from the "
        "first tick that saw traffic to the last. `recvfrom` alone: a loop that only calls "
        "`recvfrom`." % _f(s["heap_n"]),
        "",
        "**Loss-free rate**: the highest offered rate with < %.1f%% loss over %s s, found "
        "by multiplying the rate by %g from %s/s (%s s trials) until a trial fails, "
        "confirming the last good rate at full length, then %d bisection steps at full "
        "length. The sender is CPython calling `sendmmsg(2)` through ctypes (batches of up "
        "to 32, time-based pacing); it alone reaches the rates shown above; where it fell "
        "short of a rate with a relay running (they share 2 CPUs), the table says so. "
        "Forwarded = the namespace's UDP `OutDatagrams` counter minus what the "
        "sender sent (no receiving process competes for the 2 CPUs). A failing trial is "
        "retried once (the machine is shared: noise only makes a relay look slower). "
        "**Rates are noisy** on a 2-CPU machine shared with other test runs: take them as "
        "±20%%; the instruction counts are the stable comparison." % (
            100 * s["max_loss"], _f(s["confirm_s"], "{:g}"), s["factor"],
            _f(s["start_rate"]), _f(s["explore_s"], "{:g}"), s["bisect_steps"]),
        "",
        "**Added latency**: %s datagrams at %s/s, each carrying its send time "
        "(CLOCK_REALTIME); the receiver's kernel timestamp (`SO_TIMESTAMPNS`) is the "
        "arrival. Three rounds, the contenders and the sender-straight-to-receiver path "
        "taking turns; each percentile is the median of the rounds' percentiles. Added = "
        "percentile through the relay minus the same percentile without a relay. p99 "
        "moves with the machine's load (tens to hundreds of µs)." % (
            _f(s["lat_n"]), _f(s["lat_rate"])),
        "",
        "Latency and the rate search run with all contenders up at once, each on its own "
        "groups (224.0.10.1+20k..., idle between its turns), taking turns trial by trial, "
        "so load from elsewhere falls on all of them alike. Every contender's receive "
        "socket gets a 4 MB queue (`SO_RCVBUF`; socat `rcvbuf=`), the same for all: with "
        "the kernel's default (~6 ms of traffic at 50,000/s) a few ms of scheduling noise "
        "on the shared machine decided the loss-free rate.",
        "",
        "Not like the board: the host's socket queue holds thousands of datagrams (the "
        "board's 4), `lo` instead of a wire, a system call per poll/recvfrom/sendto (on "
        "the board lwIP's are function calls), and the kernel's network work is not in "
        "the instruction counts. The board model below puts those back on paper.",
        "",
        "## Board model on paper",
        "",
    ]
    L += _board_section(res, sm)
    L.append("")
    return "\n".join(L)


def plot(res: dict, path: Path) -> str | None:
    """bench.png; returns None, or why no plot was made."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (make bench installs it)"
    sm = summary(res)
    keys = [k for k in sm if k != "bare_poll"]
    labels = [sm[k]["short"] for k in keys]
    palette = {"seed": "#c44e52", "bare": "#4c72b0", "socat": "#8172b2",
               "ours1_before": "#9d9d9d"}
    colors = [palette.get(k, "#55a868") for k in keys]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    panels = [
        ("instructions", "instructions per forwarded datagram (log)", True),
        ("heap", "heap bytes allocated per datagram", False),
        ("rate", "loss-free rate (datagrams/s, noisy)", False),
        ("p99_added", "latency added by the relay, p50 (bar) / p99 (dot), µs", False),
    ]
    for ax, (field, title, log) in zip(axes.flat, panels, strict=True):
        vals = [sm[k][field] if field != "p99_added" else sm[k]["p50_added"] for k in keys]
        xs = range(len(keys))
        heights = [0 if v is None else v for v in vals]
        ax.bar(xs, heights, color=colors)
        if field == "p99_added":
            ax.plot(xs, [sm[k]["p99_added"] or 0 for k in keys], "ko")
        if field == "heap":
            recv = (res.get("heap_recv_only") or {}).get("1473", {}).get("per_datagram")
            if recv:
                ax.axhline(recv, color="grey", ls="--", lw=1, label="recvfrom alone")
                ax.legend(fontsize=8, loc="upper right")
        if field == "instructions":
            ax.axhline(TARGETS["instructions_abs"], color="grey", ls="--", lw=1,
                       label="target for ours: 10,000")
            ax.legend(fontsize=8, loc="upper right")
        top = max(heights + [1])
        if field == "p99_added":
            top = max([top] + [sm[k]["p99_added"] or 0 for k in keys])
        if log:
            ax.set_yscale("log")
            ax.set_ylim(top=top * 2.5)
        else:
            ax.set_ylim(top=top * 1.18)
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v if v and v > 0 else 0, "n/a" if v is None else _f(v), ha="center",
                    va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
    mach = res["machine"]
    fig.suptitle("mcast-relay forward path, %s mode — %s — %s CPUs, %s, kernel %s — "
                 "MicroPython %s" % (res["mode"], mach["date"], mach["nproc"], mach["cpu"],
                                     mach["kernel"], mach["micropython"]), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


# The emulated board's section (bench/emu.py writes it) ends bench.md: kept as it is.
BOARD_SECTION = "## On the emulated board"


def write(res: dict, out: Path, log=print) -> None:
    out = Path(out)
    path = out / "bench.md"
    tail = ""
    if path.exists():
        old = path.read_text()
        at = old.find("\n" + BOARD_SECTION + "\n")
        tail = old[at:] if at >= 0 else ""
    path.write_text(markdown(res).rstrip("\n") + "\n" + tail)
    why = plot(res, out / "bench.png")
    if why:
        log("SKIP plot: " + why)
