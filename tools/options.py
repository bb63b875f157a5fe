"""The options the commands share, declared once: the same flag has the same short flag,
placeholder, type and allowed range in every command (host_tests/test_cli.py walks them).

    from tools import options
    options.add(p, "--rate", default=200.0, help="datagrams per second")

adds `--rate PPS`, `-r`, checked against its range, with the range and the default appended
to the help text. A value out of range is refused by argparse (exit code 2) with the range in
the message: `argument --rate/-r: -5 is out of range (allowed: 0-1000000 datagrams/s; 0: as
fast as possible)`.
"""

import argparse
import math
import socket

from tools import stream

MAX_SECONDS = 7 * 86400  # a week: longer is a typo, not a test


class Range:
    """An argparse type: a number (int or float) within [low, high]; `above` makes low itself
    refused (a duration of 0 s). `allowed` is how the range reads in messages and help."""

    def __init__(self, kind, low=None, high=None, unit="", note="", above=False):
        self.kind, self.low, self.high, self.above = kind, low, high, above
        if above:
            span = "more than %s" % _num(low) + (", at most %s" % _num(high) if high else "")
        elif high is None:
            span = "%s or more" % _num(low)
        else:
            span = "%s-%s" % (_num(low), _num(high))
        self.allowed = span + (" " + unit if unit else "") + ("; " + note if note else "")
        self.__name__ = kind.__name__  # argparse names the type in its own messages

    def __call__(self, text):
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a %s (allowed: %s)" % (
                text, "whole number" if self.kind is int else "number", self.allowed)) from None
        bad = isinstance(value, float) and not math.isfinite(value)
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            bad = True
        if self.high is not None and value > self.high:
            bad = True
        if bad:
            raise argparse.ArgumentTypeError("%s is out of range (allowed: %s)"
                                             % (text, self.allowed))
        return value


def _num(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "%g" % v if isinstance(v, float) else str(v)


def ipv4(text):
    """argparse type: a dotted IPv4 address of this host."""
    try:
        socket.inet_aton(text)
    except OSError:
        raise argparse.ArgumentTypeError("%r is not an IPv4 address (a.b.c.d)" % text) from None
    if text.count(".") != 3:
        raise argparse.ArgumentTypeError("%r is not a dotted IPv4 address (a.b.c.d)" % text)
    return text


ipv4.allowed = "a.b.c.d"


def endpoint(text):
    """argparse type: a multicast GROUP:PORT."""
    try:
        return stream.parse_endpoint(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


endpoint.allowed = "GROUP:PORT, group 224.0.0.0-239.255.255.255, port 1-65535"


class Spec:
    """How one flag looks in every command: its short flag, placeholder and type (or action
    for a switch)."""

    def __init__(self, short=None, metavar=None, type=None, action=None):
        self.short, self.metavar, self.type, self.action = short, metavar, type, action

    def kwargs(self):
        if self.action:
            return {"action": self.action}
        return {"metavar": self.metavar, "type": self.type}


SECONDS = Range(float, 0.0, float(MAX_SECONDS), "s", above=True)
SPECS = {
    # traffic
    "--group": Spec("-g", "G:P", endpoint),
    "--iface": Spec("-i", "IP", ipv4),
    "--size": Spec("-s", "BYTES", Range(int, stream.HEADER_SIZE, stream.MAX_SIZE, "bytes",
                                        "the test payload's header included")),
    "--rate": Spec("-r", "PPS", Range(float, 0.0, 1e6, "datagrams/s", "0: as fast as possible")),
    "--count": Spec("-c", "N", Range(int, 1, 10 ** 9)),
    "--duration": Spec("-d", "S", SECONDS),
    "--ttl": Spec(None, "N", Range(int, 1, 255, "", "1 keeps it on this LAN")),
    "--interval": Spec(None, "S", Range(float, 0.0, 3600.0, "s", "0: none")),
    "--wait": Spec(None, "S", Range(float, 0.0, 3600.0, "s")),
    "--max-loss": Spec(None, "PCT", Range(float, 0.0, 100.0, "%")),
    "--route": Spec(None, "N", Range(int, 0, None)),
    "--timeout": Spec(None, "S", SECONDS),
    "--boot-timeout": Spec(None, "S", SECONDS),
    # files and boards
    "--config": Spec(None, "PATH", str),
    "--boards": Spec(None, "FILE", str),
    "--port": Spec("-p", "PORT", str),
    "--firmware": Spec(None, "UF2", str),
    # output
    "--quiet": Spec("-q", action="store_true"),
    "--verbose": Spec("-v", action="store_true"),
    "--json": Spec(None, action="store_true"),
}
# The loss every command tolerates unless told otherwise (sim, probe, selftest), in percent.
MAX_LOSS_PCT = 1.0


def add(parser, flag, help, default=None, shown_default=None, **kw):
    """parser.add_argument for a shared flag. The range and the default are appended to
    `help` (a default of None or False says nothing; shown_default says what a None default
    ends up as). kw: dest, action="append", required."""
    spec = SPECS[flag]
    names = [flag] + ([spec.short] if spec.short else [])
    args = spec.kwargs()
    if kw.get("action") == "append":
        args.pop("action", None)
    args.update(kw)
    notes = []
    allowed = getattr(spec.type, "allowed", None)
    if allowed and not spec.action:
        notes.append(allowed)
    if shown_default is not None:
        notes.append("default %s" % shown_default)
    elif default not in (None, False):
        notes.append("default %s" % (_num(default) if isinstance(default, (int, float))
                                     else default))
    text = help + (" (%s)" % "; ".join(notes) if notes else "")
    return parser.add_argument(*names, default=default, help=text.replace("%", "%%"), **args)


def given(args, *dests):
    """The options (by dest) given on the command line, for those whose default is None."""
    return [d for d in dests if getattr(args, d, None) is not None]
