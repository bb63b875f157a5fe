"""What the tools explain, without a network: where a loss happened (tools/lossplit.py), the
fleet view's rates (tools/fleet.py), the sim's traffic line, a probe that got nothing back, and
check's JSON errors (tools/jsontext.py), stricter than the board's json.loads."""

import json

from hypothesis import given
from hypothesis import strategies as st

from tools import fleet, fw, jsontext, lossplit, probe, simtraffic
from tools.twin import mpy


# -- the loss split -------------------------------------------------------------------------
@st.composite
def a_test(draw):
    """sent, received and the board's counters of a test where every datagram is accounted
    for: some lost before the socket, some refused by each guard or otherwise, some after."""
    sent = draw(st.integers(0, 10 ** 6))
    rx = draw(st.integers(0, sent))
    refused = {k: 0 for k in lossplit.GUARDS}
    left = rx
    for k in lossplit.GUARDS:
        refused[k] = draw(st.integers(0, left))
        left -= refused[k]
    other = draw(st.integers(0, left))
    tx = left - other
    received = draw(st.integers(0, tx))
    return sent, received, dict(rx=rx, tx=tx, **refused), other


@given(a_test())
def test_the_split_adds_up_to_the_loss(case):
    sent, received, board, other = case
    s = lossplit.split(sent, received, board)
    assert s["lost"] == sent - received
    assert s["before_board"] + s["at_board"] + s["after_board"] + s["unknown"] == s["lost"]
    assert sum(s["guards"].values()) == s["at_board"]
    assert s["unknown"] == 0
    assert (s["before_board"], s["after_board"]) == (sent - board["rx"], board["tx"] - received)
    assert s["guards"] == dict(((k, board[k]) for k in lossplit.GUARDS), other=other)


@given(a_test(), st.integers(1, 1000))
def test_counters_that_are_not_this_test_alone_leave_the_loss_unknown(case, extra):
    sent, received, board, _ = case
    board = dict(board, rx=board["rx"] + sent + extra)  # someone else sent to the route too
    s = lossplit.split(sent, received, board)
    assert s["unknown"] == s["lost"] and s["before_board"] == s["at_board"] == 0
    assert "other traffic on the route" in s["why_unknown"]


def test_the_split_reads_every_source_of_counters():
    line = {"rx": 10, "tx": 6, "big": 1, "rate": 2, "own": 0, "src": 1, "err": 0}  # stats line
    reply = {"rx": 10, "tx": 6, "big": 1, "rate": 2, "own": 0, "source": 1, "send_err": 0}
    assert lossplit.counters(line) == lossplit.counters(reply) == {
        "rx": 10, "tx": 6, "big": 1, "rate": 2, "own": 0, "src": 1}
    before = lossplit.counters({"rx": 4, "tx": 4})
    assert lossplit.delta(lossplit.counters(reply), before)["rx"] == 6
    assert lossplit.add([before, before])["tx"] == 8 and lossplit.add([]) is None


def test_the_split_in_words():
    s = lossplit.split(300, 0, {"rx": 300, "tx": 0, "big": 300, "rate": 0, "own": 0, "src": 0})
    assert lossplit.describe(s) == (
        "where the 300 lost went: 0 before the board's socket (never read by the relay), 300 "
        "refused by the board (big 300: longer than relay.max_datagram), 0 after the board "
        "(forwarded, never arrived)")
    assert lossplit.describe(lossplit.split(5, 5, None)) == ""  # nothing lost, nothing said
    assert lossplit.describe(lossplit.split(5, 3, None, "no board answered")) == \
        "where the 2 lost went is not known: no board answered"


def test_a_probe_that_got_nothing_back_says_so():
    rep = {"from": "224.0.10.1:50000", "to": "224.0.10.2:50000", "size": 200, "sent": 20,
           "duration_s": 0.1, "send_rate_pps": 200.0, "send_errors": 0, "unique": 0, "lost": 20,
           "loss_pct": 100.0, "duplicates": 0, "reordered": 0, "rate_pps": None, "mbit_s": None,
           "latency_ms": {"p50": None}, "via": {}, "foreign": 0, "other_streams": 0,
           "loss_split": lossplit.split(20, 0, None, "no board answered")}
    text = probe.format_report(rep)
    assert "None" not in text
    assert "nothing came back" in text and "where the 20 lost went is not known" in text


# -- the fleet view's rates ------------------------------------------------------------------
def reply(uptime, rx, tx, nbytes, drop=0, **extra):
    route = {"from": "224.0.10.1:50000", "to": "224.0.10.2:50000", "name": "r", "rx": rx,
             "tx": tx, "bytes": nbytes, "drop": drop, **extra}
    return {"id": "e661410403000001", "ip": "198.18.0.10", "uptime_s": uptime,
            "link_flaps": 0, "link": "up", "routes": [route]}


def test_rates_come_from_two_replies_of_the_same_board():
    f = fleet.Fleet(interval=1.0)
    f.update(reply(10, 1000, 990, 99000, drop=10), heard=100.0)
    (first,) = f.view(100.0)[0]["routes"]
    assert first["tx_pps"] is None  # one reply: nothing to compare yet
    f.update(reply(12, 1500, 1480, 147000, drop=20), heard=102.0)
    (r,) = f.view(102.0)[0]["routes"]
    assert (r["rx_pps"], r["tx_pps"], r["drop_pps"]) == (250.0, 245.0, 5.0)
    assert r["mbit_s"] == round(48000 * 8 / 2 / 1e6, 3)
    f.update(reply(1, 20, 20, 2000), heard=103.0)  # it restarted: counters began again
    assert f.view(103.0)[0]["routes"][0]["tx_pps"] is None


def test_rates_a_reply_carries_are_shown_as_they_come():
    f = fleet.Fleet()
    f.update(reply(10, 100, 100, 1000), heard=1.0)
    f.update(reply(11, 300, 300, 3000, rx_pps=210.5, tx_pps=209.5), heard=2.0)
    r = f.view(2.0)[0]["routes"][0]
    assert (r["rx_pps"], r["tx_pps"]) == (210.5, 209.5)


def test_a_board_that_stops_answering_is_marked():
    f = fleet.Fleet(interval=1.0)
    f.update(reply(10, 0, 0, 0), heard=50.0)
    assert f.view(51.0)[0]["answering"]
    board = f.view(54.0)[0]
    assert not board["answering"] and board["silent_s"] == 4.0
    assert fleet.rows(f.view(54.0))[0][-1] == "no reply for 4 s"


# -- the sim's traffic line ----------------------------------------------------------------
def test_the_traffic_line_never_shows_more_received_than_sent():
    # the listener's count arrived after the sender's last one: that pair is not shown
    sender = [(1.00, {"sent": 150, "t": 0.75})]
    listener = [(1.10, {"t": 1.2, "groups": [{"group": "g", "unique": 179}]})]
    assert simtraffic.paired(sender, listener) is None
    sender.append((1.20, {"sent": 200, "t": 1.0}))
    sp, lp = simtraffic.paired(sender, listener)
    assert sp["sent"] >= lp["groups"][0]["unique"]
    line = simtraffic.TrafficLine()
    assert line((sp, lp)) == "sent 200 per route, g received 179"
    later = ({"sent": 400, "t": 2.0}, {"t": 2.2, "groups": [{"group": "g", "unique": 379}]})
    assert line(later) == "sent 400 per route (200/s), g received 379 (200/s)"


# -- check: strict JSON, pointing at the offending character ----------------------------------
TRAILING = ('{"nic": {}, "network": {"dhcp": true},\n'
            ' "routes": [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"}],\n'
            ' "relay": {"ttl": 1,\n'
            ' }\n'
            '}\n')
MISSING = ('{"nic": {}\n'
           ' "network": {"dhcp": true}}\n')


def board_json_loads(text):
    """What MicroPython's json.loads (the board's) makes of text."""
    code = "import json\nprint(json.dumps(json.loads(%r)))" % text
    res = mpy.run_code(code, path=())
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_trailing_comma_is_reported_at_its_own_line():
    obj, err = jsontext.loads(TRAILING, "c.json")
    assert obj is None
    head, shown, caret, note = err.splitlines()
    assert head == "c.json: not valid JSON: line 3, column 20: a trailing comma before '}' " \
                   "(JSON allows none)"
    assert shown == '    3 |  "relay": {"ttl": 1,'
    assert caret.index("^") == shown.index(",", shown.index("1"))  # under the comma
    assert note == jsontext.STRICTER
    assert board_json_loads(TRAILING)["relay"] == {"ttl": 1}  # the board would take it


def test_a_missing_comma_points_at_the_character_after_it():
    _, err = jsontext.loads(MISSING, "c.json")
    head, shown, caret, note = err.splitlines()
    assert head.startswith("c.json: not valid JSON: line 2, column 2: a missing comma")
    assert shown[caret.index("^")] == '"'
    assert note == jsontext.STRICTER
    assert board_json_loads(MISSING)["network"] == {"dhcp": True}


def test_other_json_errors_do_not_claim_the_board_takes_them():
    _, err = jsontext.loads('{"nic": }', "c.json")
    assert "line 1, column 9: expecting value" in err and jsontext.STRICTER not in err


def test_check_shows_the_offending_line(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "config.json"
    f.write_text(TRAILING)
    p = subprocess.run([sys.executable, "-m", "tools", "check", str(f)], capture_output=True,
                       text=True, cwd=fw.ROOT, timeout=60)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[0] == "%s: 1 error(s):" % f
    assert lines[1].endswith("line 3, column 20: a trailing comma before '}' (JSON allows none)")
    assert lines[2] == '      3 |  "relay": {"ttl": 1,'
    assert "stricter than the board" in p.stdout
