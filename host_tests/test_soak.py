"""Soak: the real firmware (lwIP personality) forwards a steady numbered stream
for a bounded time: 0 loss, no exception, a flat heap. `make soak`; shorter
with SOAK_S=60 (seconds), another rate with SOAK_PPS. The figures go to
build/soak.json and, by hand, into docs/resilience.md.

Heap: the relay runs gc.collect() right before each stats line, so the line's
`mem free` is the heap after a collection. Those minima are compared, not the
allocator's sawtooth between collections.
"""

import os
import statistics
import time

import pytest

from host_tests.twinlan import (
    Receiver,
    Stream,
    no_traceback,
    route_stats,
    running_board,
    save_result,
)
from tools import boardlink, stream

SOAK_S = int(os.environ.get("SOAK_S", "600"))
SOAK_PPS = float(os.environ.get("SOAK_PPS", "100"))
SIZE = int(os.environ.get("SOAK_SIZE", "512"))
HEAP_TOLERANCE = 2048  # bytes a post-collect minimum may drift (allocator layout)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 600)
def test_soak_steady_rate_no_loss_flat_heap(net):
    lan, board_host, pc1, pc2 = net  # the querier spoke once; it stays silent for the run
    interval = 10 if SOAK_S >= 300 else max(2, SOAK_S // 30)
    with running_board(board_host, stats_interval_s=interval, watchdog_ms=5000) as board:
        time.sleep(interval + 1)  # one stats line before traffic: the idle heap
        with Receiver(pc2, "224.0.10.2", 50000) as rx:
            t0 = time.time()
            with Stream(pc1, "224.0.10.1", 50000, rate=SOAK_PPS, seconds=SOAK_S,
                        size=SIZE) as st:
                sent = st.finish(SOAK_S + 120)
                assert st.done, "the stream did not finish"
                send_errors = st.errors
            wall = time.time() - t0
            rx.wait(lambda: len(rx.got) >= sent, 10)
            time.sleep(1)
            got = list(rx.got)
        time.sleep(interval + 1)  # a stats line after the last datagram
        final = route_stats(board)
    out = no_traceback(board)
    seqs = [d[0] for d in got]
    uniq = set(seqs)
    lost = sorted(set(range(sent)) - uniq)
    dups = len(seqs) - len(uniq)
    reordered = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b < a)
    lat = sorted(d[2] - d[1] for d in got)
    stats = [st for st in map(boardlink.parse_stats, board.lines) if st]
    mem = [(st["uptime_s"], st["mem_free"]) for st in stats]
    third = max(1, len(mem) // 3)
    first_min = min(v for _, v in mem[:third])
    last_min = min(v for _, v in mem[-third:])
    fig = {
        "seconds": SOAK_S, "rate_pps": SOAK_PPS, "size": SIZE, "wall_s": round(wall, 1),
        "sent": sent, "received": len(uniq), "lost": len(lost), "dups": dups,
        "reordered": reordered, "send_errors": send_errors,
        "latency_ms": {"median": round(statistics.median(lat) * 1000, 2),
                       "p99": round(stream.percentile(lat, 99) * 1000, 2),
                       "max": round(lat[-1] * 1000, 2)} if lat else None,
        "board": final, "boots": board.boots,
        "mem_free_after_collect": {"samples": len(mem), "first": mem[0][1] if mem else None,
                                   "min_first_third": first_min, "min_last_third": last_min,
                                   "max": max(v for _, v in mem), "min": min(v for _, v in mem),
                                   "drift": last_min - first_min},
        "mem_series": mem,
    }
    save_result("soak.json", fig)
    print({k: v for k, v in fig.items() if k != "mem_series"})
    assert sent >= SOAK_S * SOAK_PPS * 0.95
    assert not lost and dups == 0, (len(lost), lost[:20], dups)
    assert final["rx"] == sent and final["tx"] == sent and final["drop"] == 0, final
    assert board.boots == 1 and board.resets == [], out
    assert len(mem) >= 4, out
    assert last_min >= first_min - HEAP_TOLERANCE, fig["mem_free_after_collect"]
