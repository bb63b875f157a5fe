# The forward loops: all that runs per datagram. Relay.run() calls one() for a
# single route and several() for two or more. Per datagram: recvfrom, the
# size checks, one dict lookup for both source guards (own address,
# allow-list), a token, sendto and the counters; nothing allocated beyond what
# recvfrom returns, nothing formatted. When the tick is due the loop hands over
# to relay.tick() (housekeeping, lib/relay.py) and goes on or returns as it says.
#
# deploy also ships this module compiled to machine code for the board
# (forward_native.mpy: mpy-cross -X emit=native); lib/relay.py imports that
# when the firmware loads it and this bytecode otherwise (docs/architecture.md).
import select
import time

from micropython import const

TICK_MS = const(100)  # the relay's tick (lib/relay.py uses it); also the wait for a datagram
# What a blocking recvfrom raises when its timeout passes: ETIMEDOUT on lwIP,
# EAGAIN on the unix port (lwIP raises EAGAIN only on non-blocking sockets).
_TIMEOUTS = (110, 11)
_POLLIN = const(1)


def one(relay, r):
    """One route: a blocking recvfrom with the tick as its timeout (no poll).
    rx, tx, bytes and the tokens live in locals and go back into the Route
    before every tick and when the loop ends, so the Route's counters read
    the same as when the loop counts into them directly (several())."""
    bufn = relay.max_datagram + 1  # one more than allowed: a longer datagram shows as too big
    maxd = relay.max_datagram
    recvfrom = r.recvfrom
    forwardable = r.forwardable
    dst = r.dst_addr
    sendto = relay.tx.sendto
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    r.sock.settimeout(TICK_MS / 1000)
    rx = tx = nbytes = 0
    tokens = r.tokens
    due = time.ticks_add(ticks_ms(), TICK_MS)
    try:
        while True:
            try:
                data, addr = recvfrom(bufn)
            except OSError as e:
                if e.args[0] not in _TIMEOUTS:
                    r.recv_err += 1
            else:
                rx += 1
                n = len(data)
                if n > maxd:
                    r.big += 1
                elif not n:
                    r.empty += 1
                elif addr in forwardable or r.admit(addr):
                    if tokens:
                        tokens -= 1
                        try:
                            sendto(data, dst)
                            tx += 1
                            nbytes += n
                        except OSError:
                            r.send_err += 1
                    else:
                        r.rate += 1
            if ticks_diff(ticks_ms(), due) >= 0:
                r.rx += rx
                r.tx += tx
                r.bytes += nbytes
                r.tokens = tokens
                rx = tx = nbytes = 0
                due = relay.tick(due)
                if due is None:
                    return
                tokens = r.tokens
    finally:
        r.rx += rx
        r.tx += tx
        r.bytes += nbytes
        r.tokens = tokens


def several(relay):
    """Two or more routes: one select.poll over their receive sockets; the
    counters go straight into each Route."""
    bufn = relay.max_datagram + 1
    maxd = relay.max_datagram
    sendto = relay.tx.sendto
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    # What the loop needs of each route, as locals: unpacking one tuple
    # costs MicroPython less than three attribute loads (docs/architecture.md).
    hot = {}
    poll = select.poll()
    for r in relay.routes:
        hot[r.sock] = (r, r.recvfrom, r.forwardable, r.dst_addr)
        poll.register(r.sock, _POLLIN)
    ipoll = poll.ipoll
    due = time.ticks_add(ticks_ms(), TICK_MS)
    while True:
        for ev in ipoll(TICK_MS):
            r, recvfrom, forwardable, dst = hot[ev[0]]
            try:
                data, addr = recvfrom(bufn)
            except OSError:
                r.recv_err += 1
                continue
            r.rx += 1
            n = len(data)
            if n > maxd:
                r.big += 1
            elif not n:
                r.empty += 1
            elif addr in forwardable or r.admit(addr):
                tokens = r.tokens
                if not tokens:
                    r.rate += 1
                    continue
                r.tokens = tokens - 1
                try:
                    sendto(data, dst)
                except OSError:
                    r.send_err += 1
                    continue
                r.tx += 1
                r.bytes += n
        if ticks_diff(ticks_ms(), due) >= 0:
            due = relay.tick(due)
            if due is None:
                return
