"""lib/relay.py over a minute of virtual time (host_tests/relay_clock.py, under the real
MicroPython unix port): the groups announced again after a cable pull, and a loop that gets
no time (a stall), with one route (lib/forward.py one()) and two (several())."""

import json
import os
import re
import subprocess

import pytest

from tools.twin import mpy

ROOT = mpy.ROOT
UP_MS = 4000  # relay_clock.py: the cable is out from 2 s to 4 s
ANNOUNCE_S = (1, 3, 8, 35)  # lib/relay.py _ANNOUNCE_MS
DISCOVERY = "239.255.10.1"


def scenario(name, routes):
    env = dict(os.environ, MICROPYPATH=mpy.micropypath(mpy.LIB))
    r = subprocess.run([*mpy.micropython_argv(), str(ROOT / "host_tests" / "relay_clock.py"),
                        name, str(routes)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def leaves(out, group):
    return [t for t, op, g in out["events"] if op == "leave" and g == group]


def after_the_plug(times):
    """Seconds after the relay saw the link back (its first announcement), rounded."""
    return [round((t - times[0]) / 1000) for t in times]


@pytest.mark.parametrize("routes", [1, 2])
def test_re_announcements_skip_groups_that_receive(routes):
    """After a cable pull the groups are announced at once (leave + join: lwIP reports only a
    new membership); the announcements 1, 3, 8 and 35 s later leave a group only when it
    received nothing since the previous one: on a switch with fast leave a leave cuts the
    port off until the join's report, and datagrams in between are lost."""
    out = scenario("pull", routes)
    for i in range(routes):
        got = leaves(out, "224.0.10.%d" % (1 + i))[:-1]  # the last: leaving when run() ends
        assert len(got) == 1 and UP_MS <= got[0] <= UP_MS + 600, out["events"]
    # the discovery group received no query: announced every time
    disc = leaves(out, DISCOVERY)[:-1]
    assert after_the_plug(disc) == [0, *ANNOUNCE_S], out["events"]
    assert sum(out["got"]) == out["sent"]  # every datagram that came, forwarded
    assert out["stats"]["link_flaps"] == 1 and out["stats"]["stalls"] == 0


def test_re_announcements_of_an_idle_group_all_happen():
    out = scenario("pull-idle", 1)
    got = leaves(out, "224.0.10.1")[:-1]
    assert after_the_plug(got) == [0, *ANNOUNCE_S], out["events"]
    assert got[0] >= UP_MS


@pytest.mark.parametrize("routes", [1, 2])
def test_a_stall_is_counted_said_once_and_reported(routes):
    """The loop gets no time for 2,000 ms at 3 s, 800 ms at 12 s, 1,500 ms at 80 s (on the
    board: the NIC driver draining a flood from its interrupt). Every one is counted; the log
    says so once a minute at most; relay.stats(), the stats line and the discovery reply
    carry the count; forwarding goes on after each, groups untouched."""
    out = scenario("stalls", routes)
    said = [line for line in out["log"] if "receive stalled" in line]
    assert len(said) == 2, out["log"]
    first = re.search(r"relay: receive stalled ([\d,]+) ms: more multicast than the NIC can "
                      r"drain; see README", said[0])
    assert first and 2000 <= int(first.group(1).replace(",", "")) <= 2100, said
    assert "," in first.group(1)  # "2,000 ms"
    st = out["stats"]
    assert st["stalls"] == 3
    assert 4300 <= st["stalled_ms"] <= 4600, st
    assert " stalls 3 | " in out["stats_line"]
    assert (out["reply"]["stalls"], out["reply"]["stalled_ms"]) == (3, st["stalled_ms"])
    # recovered each time: 50/s for 90 s, of which the stalls cost all but the 4 that the
    # socket keeps (lwIP's queue), forwarded in full; no membership was touched meanwhile
    assert sum(out["got"]) == out["sent"]
    assert all(4200 <= g <= 4300 for g in out["got"]), out["got"]
    assert not [e for e in out["events"] if e[1] == "leave" and e[0] < 89000], out["events"]
