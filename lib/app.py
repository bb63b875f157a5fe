# Start-up orchestration. boot(): config + NIC, never raises, so the REPL is
# always reachable. main(): build the relay and run it; returns the relay so
# that after Ctrl-C `relay` is left at the REPL with its counters.
import gc
import json
import os
import sys
import time

import machine
from backoff import Backoff
from version import VERSION

CONFIG = "config.json"
LAST_GOOD = "config.last.json"  # the last config that started cleanly
SAFE_FLAG = "safe_boot"  # this file present: start without the relay


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _reset_cause():
    return "watchdog" if machine.reset_cause() == machine.WDT_RESET else "power-on"


class Board:
    """What boot() found: the config in force, the NIC, and why not if not."""

    def __init__(self, log=print):
        self.cfg = None
        self.source = None
        self.nic = None
        self.safe = False
        self.problem = None
        self.nic_retry = Backoff(log)  # NIC bring-up: boot() and main() share its reports
        self.nic_attempts = 0


def load_config(log=print):
    """config.json, or the last good one when config.json is bad.

    The validator (lib/config.py) is the largest module and is needed only
    here: it is dropped from memory before this returns (gc.mem_free() on the
    twin: docs/architecture.md)."""
    import config

    try:
        cfg, errors = config.load(CONFIG)
        if not errors:
            return cfg, CONFIG
        log("%s: %d error(s), the relay will not use it:" % (CONFIG, len(errors)))
        for e in errors:
            log("  " + e)
        if _exists(LAST_GOOD):
            last, last_errors = config.load(LAST_GOOD)
            if not last_errors:
                log("running the last good config (%s) instead" % LAST_GOOD)
                return last, LAST_GOOD
        return None, None
    finally:
        del config
        sys.modules.pop("config", None)
        gc.collect()


def save_last_good(cfg, log=print):
    text = json.dumps(cfg)
    try:
        with open(LAST_GOOD) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    try:
        with open(LAST_GOOD, "w") as f:
            f.write(text)
    except OSError as e:
        log("could not save %s: %s" % (LAST_GOOD, e))


def bring_up_nic(board, log=print, attempts=1, wdt=None):
    """Construct/activate the NIC, retrying with back-off (1, 2, 4 ... 30 s).
    A failure is reported once per change (step or error), not per attempt,
    and its end once. attempts=0 retries until it works (Ctrl-C stops it).
    Never resets the board: a dead chip leaves it waiting, REPL reachable."""
    import nic as nicmod

    if board.nic is None:
        board.nic = nicmod.Nic(board.cfg["nic"], board.cfg["network"])
    retry = board.nic_retry
    n = 0
    while True:
        n += 1
        board.nic_attempts += 1
        try:
            board.nic.bring_up()
        except (OSError, ValueError, TypeError) as e:
            retry.failed(time.ticks_ms(), "NIC: %s failed: %r" % (board.nic.stage or "bring-up", e))
            if attempts and n >= attempts:
                return False
            retry.wait(wdt)
            continue
        if retry.succeeded():
            log("NIC: up after %d attempt(s)" % board.nic_attempts)
        return True


def boot(log=print):
    board = Board(log)
    try:
        log("mcast-relay %s booting (reset cause: %s)" % (VERSION, _reset_cause()))
        if _exists(SAFE_FLAG):
            board.safe = True
            log("safe boot: '%s' exists, the relay stays off (delete it and reset)" % SAFE_FLAG)
            return board
        board.cfg, board.source = load_config(log)
        if board.cfg is None:
            board.problem = "no valid config"
            log("relay not started: fix %s and reset; the REPL is yours" % CONFIG)
            return board
        if bring_up_nic(board, log, attempts=1):
            wait = board.cfg["relay"]["link_wait_s"]
            if not board.nic.wait_connected(wait):
                log("NIC: no link/address after %d s; the relay starts and waits for it" % wait)
    except Exception as e:  # boot must never leave the board unreachable
        board.problem = repr(e)
        log("boot failed: %r" % (e,))
    return board


def main(board, log=print):
    """Run the relay; returns it (also after Ctrl-C) or None if it cannot start."""
    if board is None or board.safe or board.cfg is None:
        return None
    import relay as relaymod

    try:
        log("relay starting: Ctrl-C within 1 s skips it")
        time.sleep_ms(1000)
    except KeyboardInterrupt:
        log("relay skipped (Ctrl-C); app.main(board) starts it")
        return None
    cfg = board.cfg
    wdt = None
    if cfg["relay"]["watchdog_ms"]:
        wdt = machine.WDT(timeout=cfg["relay"]["watchdog_ms"])
    r = None
    try:
        if board.nic is None or not board.nic.active():
            bring_up_nic(board, log, attempts=0, wdt=wdt)
        r = relaymod.Relay(cfg, board.nic, log=log, wdt=wdt, responder=_responder(cfg, log))
        retry = Backoff(log)
        while True:
            try:
                r.open()
                break
            except OSError as e:
                retry.failed(time.ticks_ms(), "relay: cannot open sockets: %r" % (e,))
                retry.wait(wdt)
        if board.source == CONFIG:
            save_last_good(cfg, log)  # it started cleanly: the one to fall back on
        log(board.nic.status_line(VERSION, "%s | forward loop %s" % (_ttl_note(r),
                                                                      relaymod.FORWARD)))
        r.run()  # until Ctrl-C: it leaves its groups and says so itself
    except KeyboardInterrupt:
        # Ctrl-C outside the loop proper (a moment too early or too late)
        if r is None or r.tx is None:
            log("relay not started (Ctrl-C)")
        else:
            r.close()
            log("relay: stopped (Ctrl-C). relay.stats() has the counters; relay.run() resumes.")
    _keep_fed(wdt, log)
    return r


_feeder = None


def _keep_fed(wdt, log=print):
    """After Ctrl-C the relay no longer feeds the watchdog, and on RP2040 it
    cannot be stopped: a soft timer feeds it so the REPL stays usable (the
    alternative is a reset every watchdog_ms while someone types)."""
    global _feeder
    if wdt is None or _feeder is not None:
        return
    try:
        _feeder = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=1000,
                                callback=lambda t: wdt.feed())
    except (AttributeError, ValueError, TypeError, OSError) as e:
        log("watchdog: cannot keep it fed (%r): the board resets soon" % (e,))
        return
    log("watchdog: a timer feeds it while the relay is stopped; "
        "reset the board to run the relay under the watchdog again")


def _responder(cfg, log):
    """The discovery responder the config asks for (None: discovery off)."""
    if not cfg["discovery"]["enabled"]:
        return None
    try:
        import discovery
    except ImportError as e:  # lib/discovery.py missing on the board: say so, relay on
        log("discovery: not available (%r): no replies to discover/status" % (e,))
        return None
    return discovery.Responder(cfg["discovery"])


def _ttl_note(r):
    if r.ttl_applied is not None:
        return "ttl %d" % r.ttl_applied
    if r.ttl is not None:
        return "ttl 255 (fixed by this port's lwIP; relay.ttl=%d not applied)" % r.ttl
    return "ttl: port default (255 on the board)"
