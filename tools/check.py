"""Validate a config.json with the firmware's own validator (lib/config.py,
the module the board runs), list every error, and summarize the config the
board would run. Exit code 1 when there is an error.

The file is read as strict JSON, which is stricter than the board's
json.loads (MicroPython's takes trailing commas and missing commas): a JSON
error names the line and column of the offending character and shows it."""

import json
import sys

from tools import exitcode, fw, options

NAME = "check"


def add_parser(sub):
    p = sub.add_parser(NAME, help="validate config.json with the board's own validator",
                       description=__doc__)
    p.add_argument("path", nargs="?", default=str(fw.CONFIG),
                   help="the config to check (default: the repo's config.json)")
    options.add(p, "--boards", help="also check every board overlay in FILE (boards.json) "
                                    "merged over it")
    options.add(p, "--json", help="print the normalized config (defaults filled in) as JSON")
    p.set_defaults(func=run)
    return p


def summary(cfg):
    """A few lines: what the board would do with this config."""
    nic, net, relay, disc = cfg["nic"], cfg["network"], cfg["relay"], cfg["discovery"]
    intn = "INTN GP%d" % nic["intn"] if nic["intn"] is not None else \
        "no INTN (the chip is polled every 64 ms)"
    lines = ["  nic      SPI%d %.1f MHz SCK %d MOSI %d MISO %d CS %d RST %d, %s" % (
        nic["spi"], nic["baudrate"] / 1e6, nic["sck"], nic["mosi"], nic["miso"], nic["cs"],
        nic["rst"], intn)]
    if net["dhcp"]:
        lines.append("  network  DHCP")
    else:
        lines.append("  network  %s netmask %s gateway %s dns %s" % (
            net["ip"], net["netmask"], net["gateway"], net["dns"]))
    for r in cfg["routes"]:
        extra = []
        extra.append("cap %d/s burst %d" % (r["rate_pps"], r["burst"]) if r["rate_pps"]
                     else "no rate cap")
        if r["allow"]:
            extra.append("sources %s" % ", ".join(r["allow"]))
        if r.get("allow_reserved"):
            extra.append("reserved groups allowed")
        lines.append("  route    %s %s -> %s (%s)" % (r["name"], r["from"], r["to"],
                                                       "; ".join(extra)))
    lines.append("  relay    max datagram %d, stats every %s, ttl %s, link check %d ms, "
                 "link wait %d s, watchdog %s" % (
                     relay["max_datagram"],
                     "%d s" % relay["stats_interval_s"] if relay["stats_interval_s"] else "off",
                     relay["ttl"] if relay["ttl"] is not None else "port default",
                     relay["link_check_ms"], relay["link_wait_s"],
                     "%d ms" % relay["watchdog_ms"] if relay["watchdog_ms"] else "off"))
    lines.append("  discovery %s" % (("on, " + disc["group"]) if disc["enabled"] else "off"))
    return "\n".join(lines)


def check_one(label, obj, out=sys.stdout, as_json=False):
    cfg, errors = fw.validate(obj)
    if errors:
        fw.print_errors(label + ": ", errors, out=lambda line: print(line, file=out))
        return None
    if as_json:
        print(json.dumps(cfg, indent=2, sort_keys=True), file=out)
    else:
        n = len(cfg["routes"])
        print("%s: OK, %d route(s)" % (label, n), file=out)
        print(summary(cfg), file=out)
    return cfg


def run(args):
    raw, cfg, errors = fw.check_file(args.path)
    if errors:
        fw.print_errors(args.path + ": ", errors)
        return exitcode.FAILED
    if args.json:
        print(json.dumps(cfg, indent=2, sort_keys=True))
    else:
        print("%s: OK, %d route(s)" % (args.path, len(cfg["routes"])))
        print(summary(cfg))
    if not args.boards:
        return exitcode.PASSED
    overlays, errs = fw.load_overlays(args.boards)
    bad = bool(errs)
    for e in errs:
        print(e)
    for uid, ov in sorted(overlays.items()):
        if check_one("%s [%s]" % (args.boards, uid), fw.merge(raw, ov), as_json=args.json) is None:
            bad = True
    return exitcode.FAILED if bad else exitcode.PASSED
