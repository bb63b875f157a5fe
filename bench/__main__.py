"""`python -m bench [--quick] [--out DIR] [--only KEY,...] [--skip-rate]`

Runs every contender side by side in a private network namespace (re-executes
itself under `unshare --net`; root) and writes DIR/bench.md, DIR/bench.json and
DIR/bench.png. Full mode (`make bench`) writes into docs/; quick mode (the test
suite) defaults to build/bench-quick/ and asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.twin import mpy

from . import measure, ns, procs, report, traffic

ROOT = mpy.ROOT
# lib/relay.py before the hot-path change (5402cdf): full mode measures it beside ours.
BEFORE_REV = "71fc4fd"


def before_contender(rev: str, tmp: Path, skipped: list[str]) -> procs.Contender | None:
    import subprocess

    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", "%s:lib/relay.py" % rev],
                              capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        skipped.append("before: lib/relay.py at %s not available (%s)" % (rev, e))
        return None
    d = tmp / "before"
    d.mkdir()
    (d / "relay.py").write_text(text)
    return procs.Contender("ours1_before", "ours, 1 route, before (%s)" % rev, 1, lib=str(d),
                           short="ours 1 route\nbefore (%s)" % rev)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs, for CI (no timing claims)")
    p.add_argument("--out", default=None, help="output folder (default docs/ or build/bench-quick/)")
    p.add_argument("--only", default="", help="comma-separated contender keys "
                   "(seed,bare,socat,ours1,ours4)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: "
                   "instructions,heap,latency,rate")
    p.add_argument("--counts", default="", help="callgrind datagram counts N1,N2 "
                   "(default 1000,11000; quick 20,1020)")
    p.add_argument("--no-report", action="store_true", help="only bench.json (no md/png)")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="only write bench.md and bench.png again from a bench.json")
    p.add_argument("--before", default=None, metavar="REV",
                   help="also run lib/relay.py as of git REV as a contender (full mode: %s)"
                   % BEFORE_REV)
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict:
    import os
    import platform

    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "micropython": procs.micropython_version(),
        "python": platform.python_version(),
        "valgrind": _version(["valgrind", "--version"]),
        "socat": _version(["socat", "-V"], grep="socat version"),
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }


def _version(argv: list[str], grep: str | None = None) -> str | None:
    import subprocess

    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if grep is None or grep in line:
            return line.strip()
    return None


def run(args: argparse.Namespace) -> int:
    ns.setup()
    s = measure.Settings.quick_mode() if args.quick else measure.Settings.full()
    if args.counts:
        s.n1, s.n2 = (int(x) for x in args.counts.split(","))
    out = Path(args.out) if args.out else (
        ROOT / "build" / "bench-quick" if args.quick else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    only = [k for k in args.only.split(",") if k]
    skip = {k for k in args.skip.split(",") if k}
    # Calibration contenders (instructions only) join the full run, or when named.
    contenders = [c for c in procs.CONTENDERS + procs.CALIBRATION
                  if (c.key in only if only else c in procs.CONTENDERS or not args.quick)]
    have_socat = shutil.which("socat") is not None
    have_valgrind = shutil.which("valgrind") is not None
    skipped: list[str] = []
    if not have_socat:
        skipped.append("socat: `socat` not installed (make bench installs it): contender skipped")
        contenders = [c for c in contenders if c.key != "socat"]
    if not have_valgrind and "instructions" not in skip:
        skipped.append("instructions: `valgrind` not installed (make bench installs it): skipped")
        skip.add("instructions")
    for line in skipped:
        log("SKIP " + line)

    res: dict = {"mode": "quick" if s.quick else "full", "machine": machine(),
                 "settings": s.__dict__, "skipped": skipped, "contenders": {}}
    log("bench: %s mode, %s" % (res["mode"], res["machine"]["cpu"]))
    log("sender ceiling (1 group / 4 groups) ...")
    res["sender_ceiling_pps"] = {
        "1": traffic.sender_ceiling(procs.in_groups(1), 0.5 if s.quick else 2.0),
        "4": traffic.sender_ceiling(procs.in_groups(4), 0.5 if s.quick else 2.0),
    }
    log("  %.0f / %.0f datagrams/s" % (res["sender_ceiling_pps"]["1"],
                                       res["sender_ceiling_pps"]["4"]))
    if "heap" not in skip:
        res["heap_recv_only"] = {str(b): measure.heap_recv_only(s, b) for b in (1473, 1024)}
        log("heap, recvfrom alone: %s" % {k: round(v["per_datagram"], 1)
                                          for k, v in res["heap_recv_only"].items()})
    with tempfile.TemporaryDirectory(prefix="mcast-bench-") as tmp:
        rev = args.before or (None if s.quick else BEFORE_REV)
        if rev and (not only or "ours1_before" in only):
            b = before_contender(rev, Path(tmp), skipped)
            if b is not None:
                at = [c.key for c in contenders].index("ours1") + 1 if any(
                    c.key == "ours1" for c in contenders) else len(contenders)
                contenders.insert(at, b)
        for c in contenders:
            r: dict = {"label": c.label, "short": c.short, "routes": c.routes}
            res["contenders"][c.key] = r
            log("[%s] %s" % (c.key, c.label))
            if "instructions" not in skip:
                r["instructions"] = measure.instructions(c, s, Path(tmp))
                log("  instructions/datagram: %.0f (lost %d)" % (
                    r["instructions"]["per_datagram"], r["instructions"]["lost"]))
            if "heap" not in skip and c.key != "socat" and c not in procs.CALIBRATION:
                r["heap"] = measure.heap(c, s)
                log("  heap bytes/datagram: %.1f" % r["heap"]["per_datagram"])
        side = [c for c in contenders if c not in procs.CALIBRATION]
        if side and not {"latency", "rate"} <= skip:
            with measure.Fleet(side) as fleet:
                if "latency" not in skip:
                    log("latency, all contenders side by side (and no relay):")
                    direct, lat = measure.latencies(fleet, s, log=log)
                    res["latency_direct"] = direct
                    for key, v in lat.items():
                        res["contenders"][key]["latency"] = v
                if "rate" not in skip:
                    log("loss-free rate, all contenders side by side:")
                    for key, v in measure.rates(fleet, s, log=log).items():
                        res["contenders"][key]["rate"] = v
    if not args.no_report:
        report.write(res, out, log=log)
    (out / "bench.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    log("bench: wrote %s" % ", ".join(str(p) for p in sorted(out.glob("bench.*"))))
    return 0


def render(path: Path, out: Path | None) -> int:
    res = json.loads(path.read_text())
    shorts = {c.key: c.short for c in procs.CONTENDERS + procs.CALIBRATION}
    for key, c in res["contenders"].items():
        c.setdefault("short", shorts.get(key, key.replace("_", "\n")))
    out = out or path.parent
    report.write(res, out, log=log)
    (out / "bench.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    log("bench: wrote %s" % ", ".join(str(p) for p in sorted(out.glob("bench.*"))))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.render:
        return render(Path(args.render), Path(args.out) if args.out else None)
    if ns.in_private_namespace():
        return run(args)
    ok, why = ns.available()
    if not ok:
        log("SKIP bench: %s" % why)
        return 77
    return ns.reexec_inside(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
