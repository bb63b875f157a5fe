"""lib/ pieces under the real MicroPython unix port, no network: the token
bucket, the back-off helper, the relay's NIC re-activation timing
(relay.link_wait_s) and the validator leaving memory after boot."""

import json

from tools.twin import mpy


def mpy_lines(code, cwd=None, control=None, tmp_path=None):
    """Run code with the twin's fakes and lib/ on the path; its stdout lines."""
    env = {}
    if tmp_path is not None:
        ctl = tmp_path / "control.json"
        ctl.write_text(json.dumps(control or {}))
        env = {"TWIN_CONTROL": str(ctl), "TWIN_STATE": str(tmp_path)}
    r = mpy.run_code(code, path=(mpy.FAKES, mpy.LIB), cwd=cwd, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


# -- the token bucket -----------------------------------------------------------------------
def test_bucket_without_cap_never_runs_dry():
    out = mpy_lines("""
import bucket
b = bucket.TokenBucket(0, 16)
print(b.full() == bucket.NO_CAP, b.refill(0, 100) == bucket.NO_CAP, b.refill(-5, 0) == bucket.NO_CAP)
""")
    assert out == ["True True True"]


def test_bucket_refills_at_its_rate_up_to_the_burst():
    out = mpy_lines("""
import bucket
b = bucket.TokenBucket(100, 50)
level = b.full() - 30          # 30 taken
level = b.refill(level, 100)   # 100 ms at 100/s: +10
print(b.full(), level, b.refill(level, 10000))   # never above the burst
slow = bucket.TokenBucket(3, 3)
level, got = 0, 0
for _ in range(100):           # ten seconds of 100 ms ticks, one taken whenever there is one
    level = slow.refill(level, 100)
    if level > 0:
        level -= 1
        got += 1
print(got)
""")
    assert out[0] == "50 30 50"
    assert 29 <= int(out[1]) <= 31  # 0.3 tokens a tick add up to 3 a second


# -- retry with back-off, report once per change --------------------------------------------
def test_backoff_reports_each_failure_once_and_doubles_the_wait():
    out = mpy_lines("""
import backoff
said = []
b = backoff.Backoff(said.append)
due = []
for what in ("A", "A", "A", "B", "B", "A"):
    b.failed(0, what)
    due.append(b.due)
print(len(said), said[0].startswith("A (retrying with back-off up to 30 s"), said[1][:1], said[2][:1])
print(due)
for _ in range(10):
    b.failed(0, "A")
print(b.due, b.ready(29999), b.ready(30000))
print(b.succeeded(), b.succeeded(), b.ready(0))
b.failed(0, "A")
print(len(said), b.due)
b.settle(0, 10000)
print(b.reported, b.due)
""")
    assert out[0] == "3 True B A"  # A, then B when it changed, then A again
    assert out[1] == "[1000, 2000, 4000, 8000, 16000, 30000]"
    assert out[2] == "30000 False True"
    assert out[3] == "True False True"
    assert out[4] == "4 1000"  # after a success the same failure is reported again
    assert out[5] == "None 10000"


# -- relay.link_wait_s: 0 means "do not wait" here as in app.boot -----------------------------
RELAY_REACTIVATION = """
import relay
class Nic:
    stage = None
    reactivations = 0
    def link(self):
        return True
    def connected(self):
        return False      # the address never comes back
    def reactivate(self):
        Nic.reactivations += 1
    def ip(self):
        return "198.18.0.10"
cfg = {"routes": [], "network": {"dhcp": True},
       "relay": {"max_datagram": 1472, "stats_interval_s": 0, "ttl": None,
                 "link_check_ms": 500, "link_wait_s": %d, "watchdog_ms": 0}}
r = relay.Relay(cfg, Nic(), log=lambda *a: None)
at = []
for now in range(0, 12000, 500):   # a link check every 500 ms
    n = Nic.reactivations
    r._check_link(now)
    if Nic.reactivations > n:
        at.append(now)
print(at)
"""


def test_link_wait_zero_retries_on_the_back_off_alone():
    (out,) = mpy_lines(RELAY_REACTIVATION % 0)
    assert json.loads(out) == [0, 1000, 3000, 7000]  # 1, 2, 4 s: the back-off, no 10 s wait


def test_link_wait_gives_the_address_that_long_before_trying_again():
    (out,) = mpy_lines(RELAY_REACTIVATION % 10)
    assert json.loads(out) == [0, 10000]


def test_boot_with_link_wait_zero_does_not_wait_for_the_link(tmp_path):
    cfg = json.loads((mpy.ROOT / "config.json").read_text())
    cfg["relay"] = {"link_wait_s": 0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = mpy_lines("""
import time, app
t = time.ticks_ms()
b = app.boot()
print("took", time.ticks_diff(time.ticks_ms(), t), app._SAFE_WINDOW_MS)
""", cwd=tmp_path, control={"link": False}, tmp_path=tmp_path)
    assert "NIC: no link/address after 0 s; the relay starts and waits for it" in out
    took, window = (int(x) for x in out[-1].split()[1:])
    # the safe-boot window, the chip check (160 ms after RST) and the NIC's activation
    # (50 ms here); nothing waits for the link
    assert took < window + 900, out


# -- the validator is not kept in memory -------------------------------------------------------
def test_boot_drops_the_validator_from_memory(tmp_path):
    (tmp_path / "config.json").write_text((mpy.ROOT / "config.json").read_text())
    out = mpy_lines("""
import gc, sys, app
b = app.boot()
gc.collect()
after_boot = gc.mem_free()
print(b.cfg is not None, "config" in sys.modules)
import config
gc.collect()
print(after_boot - gc.mem_free())
""", cwd=tmp_path, tmp_path=tmp_path)
    assert out[-2] == "True False"
    assert int(out[-1]) > 10000, out  # what the validator would have kept (bytes)


# -- heap.plug: the holes among the live objects -----------------------------------------------
_HOLES = """
import gc, heap
keep = []
for i in range(400):  # live objects with one-block holes between them once collected
    keep.append((0,) * (2 + 4 * (i % 3)))
    (0,) * 2
gc.collect()
def below_edge():
    # one-block objects that land below the first free run of 128 blocks
    edge = id((0,) * 510)
    return sum(1 for t in [(0,) * 2 for _ in range(300)] if id(t) < edge)
"""


def test_plug_fills_every_hole_below_the_edge():
    out = mpy_lines(_HOLES + """
print(below_edge())
gc.collect()
plugs = heap.plug()
gc.collect()
print(below_edge(), heap.count(plugs))
""")
    before = int(out[-2])
    after, plugs = (int(x) for x in out[-1].split())
    assert before > 100, out  # the holes were there: new objects went into them
    assert after == 0, out  # plugged: a new object lands where the free space starts
    assert plugs >= before, out


def test_plug_again_keeps_the_old_plugs_and_adds_the_new_holes():
    out = mpy_lines(_HOLES + """
plugs = heap.plug()
n = heap.count(plugs)
for i in range(0, len(keep), 2):  # new holes among the live objects
    keep[i] = None
gc.collect()
plugs = heap.plug(plugs)
gc.collect()
print(n, heap.count(plugs), below_edge())
""")
    first, again, below = (int(x) for x in out[-1].split())
    assert again > first, out
    assert below == 0, out
