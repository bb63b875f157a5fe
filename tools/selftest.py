"""Hardware-in-the-loop check of a board on your LAN, one PASS/FAIL per item.

Run it on a PC on the same LAN as the board, with the board on USB:
  boot       soft reboot; the firmware prints its status line (config OK, NIC up)
  link       the status line says the Ethernet link is up
  intn       the NIC interrupt wire (INTN) is in use (without it lwIP polls the
             chip every 64 ms: about 60 datagrams/s per route at best)
  forward    a probe through the board's first route (or --route): loss,
             latency, throughput, and which address forwarded
  stats      relay.stats() read over USB (mpremote exec) matches the probe
  mac-filter the board's receive counter shows whether multicast passes the
             W5100S/W5500 MAC filter the driver sets (unconfirmed on paper: this
             item tells you what your chip does)
  cable      you pull the Ethernet cable and plug it back when asked; the board
             must notice both and forward again (--no-cable skips it)
The relay is left running. Exit code 0 when nothing failed.
"""

import argparse
import json
import time

from tools import boardlink, exitcode, fw, lossplit, options, stream, term
from tools.probe import BoardCounters, Probe

NAME = "selftest"
STATS_MARK = "MCR-STATS "
STATS_CODE = "import json\nprint('MCR-STATS ' + json.dumps(relay.stats()))\n"


def add_parser(sub):
    p = sub.add_parser(NAME, help="hardware-in-the-loop check of a board: PASS/FAIL per item",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add(p, "--port", action="append",
                help="the board's serial port (default: the one board found on USB)")
    options.add(p, "--iface", help="this PC's address on the board's LAN (where the probe "
                                   "sends and joins)")
    options.add(p, "--route", default=0, help="which route to probe")
    options.add(p, "--count", default=500, help="probe datagrams")
    options.add(p, "--rate", default=100.0, help="probe datagrams per second")
    options.add(p, "--size", default=200, help="probe datagram size")
    options.add(p, "--ttl", default=stream.DEFAULT_TTL, help="probe multicast TTL")
    options.add(p, "--max-loss", default=options.MAX_LOSS_PCT,
                help="forwarding passes with at most PCT percent loss")
    p.add_argument("--no-cable", action="store_true", help="skip the cable pull")
    p.add_argument("--cable-timeout", type=options.SECONDS, default=60.0, metavar="S",
                   help="seconds to wait for each step of the cable pull (default 60)")
    p.add_argument("--recover-timeout", type=options.SECONDS, default=20.0, metavar="S",
                   help="forwarding must be back within S seconds of the link (default 20)")
    options.add(p, "--boot-timeout", default=40.0,
                help="seconds to wait for the status line after the reboot")
    options.add(p, "--verbose", help="show the board's serial output")
    options.add(p, "--json", help="the results as JSON at the end")
    p.set_defaults(func=run)
    return p


class Results:
    def __init__(self, out):
        self.items = []
        self.out = out

    def add(self, name, status, detail):
        self.items.append({"item": name, "status": status, "detail": detail})
        self.out(term.verdicts("selftest: %-4s %-10s %s" % (status, name, detail)))

    def failed(self):
        return [i for i in self.items if i["status"] == "FAIL"]


def run(args):
    out = term.say  # the board's lines come from a reader thread (--verbose)
    res = Results(out)
    try:
        port = boardlink.one_port(args.port)
    except boardlink.LinkError as e:
        boardlink.print_problem("selftest", e)
        return exitcode.USAGE
    echo = (lambda line: out("  | " + line)) if args.verbose else None
    out("selftest: board on %s; rebooting it to read its status line" % port)
    try:
        code = _run(args, port, res, out, echo)
    except boardlink.LinkError as e:
        res.add("serial", "FAIL", str(e))
        code = exitcode.FAILED
    n_fail = len(res.failed())
    n_pass = sum(1 for i in res.items if i["status"] == "PASS")
    out("selftest: %d passed, %d failed, %d skipped/info" % (
        n_pass, n_fail, len(res.items) - n_pass - n_fail))
    if args.json:
        out(json.dumps({"port": port, "items": res.items, "ok": not n_fail}, indent=2))
    return code if code else (exitcode.FAILED if n_fail else exitcode.PASSED)


def _boot(port, args, echo):
    ser = boardlink.Serial(port)
    ser.soft_reboot()
    boot = ser.follow_boot(args.boot_timeout, echo)
    return ser, boot


def _probe(src, dst, args, count=None, rate=None, wait=1.5, board_ip=None):
    """A probe through the board; with board_ip, its loss split from the board's counters
    (discovery replies by unicast, before and after)."""
    board = BoardCounters(src, dst, iface=args.iface, host=board_ip) if board_ip else None
    pr = Probe(src, dst, args.size, rate or args.rate, args.ttl, args.iface, board)
    return pr.run(count or args.count, 0, wait)


def _where(rep):
    """"; where the N lost went: ..." for a probe that lost some."""
    where = lossplit.describe(rep["loss_split"])
    return "; " + where if where else ""


def _run(args, port, res, out, echo):
    # -- boot, link, INTN --------------------------------------------------------------------
    ser, boot = _boot(port, args, echo)
    try:
        if not boot.ok:
            why = boot.diagnosis(args.boot_timeout)
            res.add("boot", "FAIL", why + "; last lines: " + " / ".join(boot.lines[-4:]))
            return exitcode.FAILED
        res.add("boot", "PASS", boot.status_line)
        s = boot.status
        if s["link"] == "up":
            res.add("link", "PASS", "Ethernet link up, IP %s/%s (%s)" % (s["ip"], s["prefix"],
                                                                         s["mode"]))
        else:
            res.add("link", "FAIL", "no Ethernet link: plug the board into the switch")
        intn = boot.intn()
        if intn is not None:
            res.add("intn", "PASS", "INTN on GP%d: the chip interrupts on each frame" % intn)
        else:
            res.add("intn", "FAIL", "no INTN: lwIP polls the chip every 64 ms (4 datagrams "
                                    "queue per socket: ~60/s at best); set nic.intn (GP21 on "
                                    "W5100S-EVB-Pico)")
        route = _pick_route(boot, args)
        if route is None:
            res.add("forward", "FAIL", "no route %d in the board's log nor in config.json"
                    % args.route)
            return exitcode.FAILED
        name, src, dst = route
        board_ip = s["ip"]
        # -- forwarding ----------------------------------------------------------------------
        watcher = boardlink.Watcher(ser, echo)
        rep = _probe(stream.parse_endpoint(src), stream.parse_endpoint(dst), args,
                     board_ip=board_ip)
        watcher.stop()
    finally:
        ser.close()
    via = ", ".join(sorted(rep["via"])) or "nobody"
    detail = "%s %s -> %s: %d/%d back, loss %.2f%%, dup %d, reordered %d, %s, %s/s; via %s" % (
        name, src, dst, rep["unique"], rep["sent"], rep["loss_pct"], rep["duplicates"],
        rep["reordered"], stream.format_latency(rep["latency_ms"]), rep["rate_pps"], via)
    detail += _where(rep)
    fwd_ok = rep["unique"] > 0 and rep["loss_pct"] <= args.max_loss
    if fwd_ok and board_ip not in rep["via"]:
        detail += " (not from the board's own address %s!)" % board_ip
        fwd_ok = False
    res.add("forward", "PASS" if fwd_ok else "FAIL", detail)
    # -- stats and the MAC filter ------------------------------------------------------------
    try:
        stats = boardlink.exec_json(port, STATS_CODE, STATS_MARK)
    except boardlink.LinkError as e:
        stats = None
        res.add("stats", "FAIL", "relay.stats() not readable: %s" % str(e).splitlines()[-1])
    rstats = None
    if stats is not None:
        rstats = next((r for r in stats.get("routes", []) if r.get("name") == name), None)
        if rstats is None:
            res.add("stats", "FAIL", "relay.stats() has no route %s: %s" % (name, stats))
        else:
            consistent = rstats["tx"] >= rep["unique"] - rep["duplicates"]
            res.add("stats", "PASS" if consistent else "FAIL",
                    "relay.stats(): %s rx %d tx %d bytes %d, uptime %d s, link %s%s" % (
                        name, rstats["rx"], rstats["tx"], rstats["bytes"], stats["uptime_s"],
                        stats["link"], "" if consistent else
                        " (fewer forwarded than the probe received?)"))
    if rstats is None:
        res.add("mac-filter", "SKIP", "needs the board's receive counter (stats)")
    elif rstats["rx"] > 0:
        res.add("mac-filter", "PASS", "the board received %d of %d multicast datagrams: this "
                                      "chip passes multicast with the driver's MAC filter "
                                      "setting" % (rstats["rx"], rep["sent"]))
    else:
        res.add("mac-filter", "FAIL", "the board received none of %d datagrams sent to %s: "
                                      "the chip's MAC filter drops multicast (Sn_MR_MFEN without "
                                      "multicast), or the switch does not deliver %s to the "
                                      "board's port (try a plain switch or a direct cable)" % (
                                          rep["sent"], src, src.split(":")[0]))
    # -- restart the relay (reading the stats stopped it), then the cable --------------------
    ser, boot = _boot(port, args, echo)
    try:
        if not boot.ok:
            res.add("restart", "FAIL", "the relay did not come back after the stats read: %s"
                    % (boot.fatal or "no status line"))
            return exitcode.FAILED
        if args.no_cable:
            res.add("cable", "SKIP", "--no-cable")
            return exitcode.PASSED
        watcher = boardlink.Watcher(ser, echo)
        try:
            _cable(args, watcher, res, out, src, dst, boot.status["ip"])
        finally:
            watcher.stop()
    finally:
        ser.close()
    return exitcode.PASSED


def _pick_route(boot, args):
    if 0 <= args.route < len(boot.routes):
        return boot.routes[args.route]
    try:
        raw, cfg, errors = fw.check_file(fw.CONFIG)
        r = cfg["routes"][args.route]
        return r["name"], r["from"], r["to"]
    except (TypeError, IndexError, KeyError):
        return None


def _cable(args, watcher, res, out, src, dst, board_ip):
    start = watcher.mark()
    out("selftest: cable: PULL the board's Ethernet cable now (waiting up to %g s)"
        % args.cable_timeout)
    if watcher.wait_for("link DOWN", args.cable_timeout, start) is None:
        res.add("cable", "FAIL", "the board did not report 'link DOWN' within %g s of the "
                                 "prompt" % args.cable_timeout)
        return
    mark = watcher.mark()
    out("selftest: cable: the board saw the link go down; PLUG it back in now")
    if watcher.wait_for("link up again", args.cable_timeout, mark) is None:
        res.add("cable", "FAIL", "the board did not report the link back within %g s"
                % args.cable_timeout)
        return
    t_up = time.monotonic()
    out("selftest: cable: link back; waiting for forwarding to resume")
    s_ep, d_ep = stream.parse_endpoint(src), stream.parse_endpoint(dst)
    back = None
    while time.monotonic() - t_up < args.recover_timeout:
        rep = _probe(s_ep, d_ep, args, count=10, rate=50, wait=0.3)
        if rep["unique"] > 0:
            back = time.monotonic() - t_up
            break
    if back is None:
        res.add("cable", "FAIL", "no forwarding within %g s after the link came back (the "
                                 "switch may have forgotten the board's groups)"
                % args.recover_timeout)
        return
    rep = _probe(s_ep, d_ep, args, count=max(50, args.count // 5), board_ip=board_ip)
    ok = rep["loss_pct"] <= args.max_loss
    res.add("cable", "PASS" if ok else "FAIL",
            "link down noticed, back up; forwarding again within %.1f s of the link; then "
            "%d/%d forwarded (loss %.2f%%)%s" % (back, rep["unique"], rep["sent"],
                                                 rep["loss_pct"], _where(rep)))
