"""The benchmark (bench/): quick mode end to end, the hot path's counting, the report.

Quick mode asserts that every part ran and every datagram came out, never a timing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import board, measure, report
from tools.twin.mpy import LIB, run_code

REPO = Path(__file__).resolve().parent.parent

# The counters lib/relay.py gave for bench/counts_scenario.py before the benchmark's
# hot-path change (71fc4fd), the same for lwIP tuple addresses and unix-port raw sockaddrs.
REFERENCE_ROUTES = [
    {"rx": 13, "tx": 6, "bytes": 190, "big": 1, "empty": 1, "own": 1, "rate": 2, "source": 2,
     "send_err": 0, "recv_err": 1},
    {"rx": 15, "tx": 7, "bytes": 377, "big": 0, "empty": 3, "own": 3, "rate": 0, "source": 0,
     "send_err": 2, "recv_err": 3},
]
REFERENCE_SENT = [[50, 11], [20, 12], [100, 11], [99, 12], [10, 11], [20, 12], [10, 11],
                  [10, 11], [10, 11], [99, 12], [20, 12], [20, 12], [99, 12]]


def test_hot_path_counts_guards_and_caps_like_before():
    p = run_code(open(REPO / "bench" / "counts_scenario.py").read(), path=(LIB,))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for kind in ("tuple", "raw"):
        assert out[kind]["routes"] == REFERENCE_ROUTES, kind
        assert out[kind]["sent"] == REFERENCE_SENT, kind
        # A route alone goes through lib/forward.py's one(): counted as several() counts it.
        for i, got in enumerate(out[kind + " alone"]):
            assert got["one"] == got["several"], (kind, i)
            assert got["one"]["routes"][0]["rx"] == REFERENCE_ROUTES[i]["rx"], (kind, i)


def test_board_model_on_paper():
    m = board.model({"seed": 170_000, "ours": 10_000})
    cases = {(c["code"], c["spi_mhz"], c["payload"]): c for c in m["cases"]}
    seed = cases[("seed", 2, 200)]
    ours = cases[("ours", 20, 200)]
    assert seed["poll_cap_pps"] == pytest.approx(62.5)  # 4 datagrams per 64 ms
    assert seed["expected_pps"] == pytest.approx(62.5)
    assert ours["poll_cap_pps"] is None and ours["expected_pps"] > 10 * seed["expected_pps"]
    # SPI at 2 MHz is 10x the bit time of 20 MHz; a 1472-byte datagram costs more than 200
    assert cases[("seed", 2, 200)]["spi_ms"] == pytest.approx(10 * cases[("seed", 20, 200)]["spi_ms"])
    assert cases[("ours", 20, 1472)]["spi_ms"] > 4 * ours["spi_ms"]
    lo, hi = ours["expected_pps_range"]
    assert lo <= ours["expected_pps"] <= hi


def _fake_results():
    c = {}
    for key, label, ins, heap, rate in (("seed", "seed", 170_000, 2240, 9000),
                                        ("bare", "bare", 7_000, 352, 100_000),
                                        ("ours1", "ours, 1 route", 11_000, 352, 90_000),
                                        ("ours1_before", "ours, 1 route, before (x)", 20_000, 448,
                                         60_000)):
        c[key] = {"label": label, "routes": 1,
                  "instructions": {"per_datagram": ins, "lost": 0},
                  "heap": {"per_datagram": heap},
                  "latency": {"p50_us": 40.0, "p99_us": 90.0, "sent": 10, "received": 10},
                  "rate": {"loss_free_pps": rate, "sender_limited": False}}
    return {"mode": "quick", "contenders": c, "skipped": ["socat: not installed"],
            "machine": {"date": "today", "nproc": 2, "cpu": "cpu", "kernel": "k",
                        "micropython": "1.29", "python": "3.11", "valgrind": None,
                        "socat": None, "load": ["0", "0", "0"]},
            "settings": measure.Settings.quick_mode().__dict__,
            "heap_recv_only": {"1473": {"per_datagram": 352}, "1024": {"per_datagram": 352}},
            "latency_direct": {"p50_us": 15.0, "p99_us": 40.0},
            "sender_ceiling_pps": {"1": 250_000, "4": 250_000}}


def test_report_has_table_targets_before_after_and_board_model(tmp_path):
    res = _fake_results()
    md = report.markdown(res)
    assert "| seed | 170,000 | 24.29 | 2,240 (+1,888) | 9,000 | 0.09 | 40 / 90 | +25 / +50 |" in md
    assert "| ours, 1 route | ≤ 10,000 instructions/datagram | 11,000 | **no** |" in md
    assert "| ours, 1 route | ≤ 64 heap bytes/datagram beyond recvfrom | +0 B | yes |" in md
    assert "| instructions / datagram | 20,000 | 11,000 |" in md
    assert "Board model on paper" in md and "62.5/s" in md
    assert "Skipped: socat: not installed" in md
    report.write(res, tmp_path, log=lambda m: None)
    assert (tmp_path / "bench.md").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_quick_mode_runs_end_to_end(tmp_path):
    """`make bench-quick`: every contender, every measurement, in its own namespace."""
    from bench import ns

    ok, why = ns.available()
    if not ok:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("the benchmark needs a network namespace in CI: " + why)
        pytest.skip(why)
    p = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=540)
    print(p.stdout[-6000:])
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads((tmp_path / "bench.json").read_text())
    have = {t: shutil.which(t) is not None for t in ("socat", "valgrind")}
    expected = {"seed", "bare", "ours1", "ours4"} | ({"socat"} if have["socat"] else set())
    assert set(res["contenders"]) == expected
    for tool, present in have.items():
        assert present or any(s.startswith(tool) or tool in s for s in res["skipped"]), tool
    for key, c in res["contenders"].items():
        if have["valgrind"]:
            ins = c["instructions"]
            assert ins["lost"] == 0, key  # every datagram came out at the receiver
            assert ins["per_datagram"] > 1000, key
        if key != "socat":
            assert c["heap"]["per_datagram"] >= 0, key
        assert c["latency"]["received"] == c["latency"]["sent"], key
        assert c["rate"]["trials"], key
    md = (tmp_path / "bench.md").read_text()
    assert "## Results" in md and "Board model on paper" in md
