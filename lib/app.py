# Start-up orchestration. boot(): safe-boot window, config, watchdog, NIC;
# never raises and never calls the WIZnet driver for a chip that does not
# answer (it would spin where Ctrl-C cannot reach), so the REPL is always
# reachable. main(): build the relay and run it; returns the relay so that
# after Ctrl-C `relay` is left at the REPL with its counters.
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
_SAFE_WINDOW_MS = 1500  # BOOTSEL or Ctrl-C this long after boot.py starts: safe boot


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
        self.problem = None  # why the relay is not running, for `board.problem` at the REPL
        self.wdt = None
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
        if wdt is not None:
            wdt.feed()
        try:
            board.nic.bring_up()
        except nicmod.ChipError as e:
            # Repeated at every try: it is the one thing to fix, and a console
            # opened after the boot has not seen it yet.
            board.problem = str(e)
            retry.failed(time.ticks_ms(), "NIC: " + board.problem, repeat=True)
            if attempts and n >= attempts:
                return False
            retry.wait(wdt)
            continue
        except (OSError, ValueError, TypeError) as e:
            board.problem = "NIC: %s failed: %r" % (board.nic.stage or "bring-up", e)
            retry.failed(time.ticks_ms(), board.problem)
            if attempts and n >= attempts:
                return False
            retry.wait(wdt)
            continue
        board.problem = None
        if retry.succeeded():
            log("NIC: up after %d attempt(s)" % board.nic_attempts)
        return True


def _safe_boot_asked(log):
    """The way out that needs no REPL: BOOTSEL pressed (after the reset: held
    during it, the RP2040 starts its USB bootloader instead) or Ctrl-C typed in
    the first moments, before the NIC is touched. How it was asked, or None."""
    try:
        import rp2

        button = rp2.bootsel_button
    except (ImportError, AttributeError):
        button = None
    log("press BOOTSEL or Ctrl-C within %.1f s for a safe boot, with the relay and the NIC off"
        % (_SAFE_WINDOW_MS / 1000))
    end = time.ticks_add(time.ticks_ms(), _SAFE_WINDOW_MS)
    try:
        while time.ticks_diff(end, time.ticks_ms()) > 0:
            if button is not None and button():
                return "BOOTSEL"
            time.sleep_ms(50)
    except KeyboardInterrupt:
        return "Ctrl-C"
    return None


def _arm_watchdog(cfg, log):
    """relay.watchdog_ms: armed before any driver call that can hang."""
    ms = cfg["relay"]["watchdog_ms"]
    if not ms:
        return None
    return machine.WDT(timeout=ms)


def boot(log=print):
    board = Board(log)
    try:
        log("mcast-relay %s booting (reset cause: %s)" % (VERSION, _reset_cause()))
        how = _safe_boot_asked(log)
        if how is not None:
            board.safe = True
            board.problem = "safe boot (%s)" % how
            log("safe boot (%s): the relay and the NIC stay off; the REPL is yours (reset to "
                "start normally)" % how)
            return board
        if _exists(SAFE_FLAG):
            board.safe = True
            log("safe boot: '%s' exists, the relay stays off (delete it and reset)" % SAFE_FLAG)
            return board
        board.cfg, board.source = load_config(log)
        if board.cfg is None:
            board.problem = "no valid config"
            log("relay not started: fix %s and reset; the REPL is yours" % CONFIG)
            return board
        board.wdt = _arm_watchdog(board.cfg, log)
        if bring_up_nic(board, log, attempts=1, wdt=board.wdt):
            wait = board.cfg["relay"]["link_wait_s"]
            if not board.nic.wait_connected(wait, board.wdt):
                log("NIC: no link/address after %d s; the relay starts and waits for it" % wait)
    except Exception as e:  # boot must never leave the board unreachable
        board.problem = repr(e)
        log("boot failed: %r" % (e,))
        _keep_fed(board.wdt, log)
    return board


def main(board, log=print):
    """Run the relay; returns it (also after Ctrl-C) or None if it cannot start."""
    if board is None or board.safe or board.cfg is None:
        return None
    import relay as relaymod

    cfg = board.cfg
    wdt = board.wdt
    try:
        log("relay starting: Ctrl-C within 1 s skips it")
        _pause(1000, wdt)
    except KeyboardInterrupt:
        log("relay skipped (Ctrl-C); app.main(board) starts it")
        _keep_fed(wdt, log)
        return None
    r = None
    try:
        if board.nic is None or not board.nic.active():
            bring_up_nic(board, log, attempts=0, wdt=wdt)
        r = relaymod.Relay(cfg, board.nic, log=log, wdt=wdt, responder=_responder(cfg, log))
        r.reset_cause = _reset_cause()
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
            log("relay not started (Ctrl-C)%s" % (
                ": " + board.problem if board.problem else ""))
        else:
            r.close()
            log("relay: stopped (Ctrl-C). relay.stats() has the counters; relay.run() resumes.")
    _keep_fed(wdt, log)
    return r


def _pause(ms, wdt):
    end = time.ticks_add(time.ticks_ms(), ms)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if wdt is not None:
            wdt.feed()
        time.sleep_ms(50)


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
