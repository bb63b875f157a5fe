"""Put the firmware on one or more boards over USB, then watch them boot.

For each board in turn (--port, repeatable; default: the one board plugged
in): read its unique id and the SHA-256 of its files (one mpremote exec),
build its config.json (the repo's, with the board's overlay from boards.json
merged over it, validated with lib/config.py), copy only the files whose
hash differs (boot.py, main.py, config.json to /, lib/*.mpy compiled by
mpy-cross to /lib, lib/forward.py also as machine code for the board's
architecture), remove stale /lib/*.py that would shadow the new .mpy,
soft-reboot, and follow the boot log until the firmware's status line.

Nothing touches a board before every config (base and overlays) validates
and lib/ compiles. Exit code 0 when every board came up.
"""

import os
from pathlib import Path

from tools import boardlink, exitcode, fw, options

NAME = "deploy"
INVENTORY_MARK = "MCR-INVENTORY "
# Runs on the board (MicroPython): unique id, .mpy version, files with hashes.
INVENTORY = """\
import os, sys, json, binascii
try:
    import hashlib
except ImportError:
    hashlib = None
def _h(p):
    if hashlib is None or not hasattr(hashlib, "sha256"):
        return None
    d = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(1024)
            if not b:
                break
            d.update(b)
    return binascii.hexlify(d.digest()).decode()
_files = {}
_lib = False
for _d in ("", "lib"):
    try:
        _names = os.listdir(_d) if _d else os.listdir()
    except OSError:
        continue
    if _d:
        _lib = True
    for _n in _names:
        _p = _d + "/" + _n if _d else _n
        try:
            if os.stat(_p)[0] & 0x4000:
                continue
            _files[_p] = _h(_p)
        except OSError:
            pass
try:
    import machine
    _uid = binascii.hexlify(machine.unique_id()).decode()
except Exception:
    _uid = None
print("MCR-INVENTORY " + json.dumps({"uid": _uid, "files": _files, "lib": _lib,
      "mpy": getattr(sys.implementation, "_mpy", 0), "platform": sys.platform,
      "version": ".".join([str(_x) for _x in sys.implementation.version[:3]])}))
"""


def add_parser(sub):
    p = sub.add_parser(NAME, help="compile, copy what changed to the board(s), reboot, watch "
                                  "the boot log", description=__doc__)
    options.add(p, "--port", action="append",
                help="the board's serial port, e.g. /dev/ttyACM0 (repeat for several boards, "
                     "deployed in turn; default: the one board found on USB)")
    options.add(p, "--config", default=str(fw.CONFIG), help="the base config")
    options.add(p, "--boards", help="per-board overlays: {\"<unique id hex>\": {partial "
                                    "config}} merged over the base (default: boards.json next "
                                    "to the config, if present)")
    switches = (
        ("--dry-run", "-n", "show what would be copied; copy nothing (the board is read, then "
                            "soft-rebooted so its relay runs again)"),
        ("--force", None, "copy every file, changed or not"),
        ("--source", None, "copy lib/*.py instead of compiled .mpy (for a MicroPython that "
                           "cannot load .mpy v6)"),
        ("--no-lib", None, "copy boot.py, main.py and config.json but not lib/ (for a firmware "
                           "with lib/ frozen in, see firmware/README.md)"),
        ("--no-reboot", None, "do not reboot after copying"),
        ("--hard-reset", None, "machine.reset() instead of a soft reboot (the boot line then "
                               "says 'watchdog': that is how the RP2040 reports a software "
                               "reset)"),
    )
    for flag, short, text in switches:
        p.add_argument(*[f for f in (flag, short) if f], action="store_true", help=text)
    options.add(p, "--boot-timeout", default=40.0,
                help="seconds to wait for the status line after the reboot")
    p.set_defaults(func=run)
    return p


class Plan:
    """What one board needs."""

    def __init__(self, port, inv):
        self.port = port
        self.inv = inv
        self.uid = inv.get("uid") or "unknown"
        self.files = {}  # remote path -> local path
        self.copy = []  # remote paths to copy
        self.remove = []  # remote paths to delete (shadowing sources)
        self.config = None
        self.overlay = False
        self.errors = []


def board_mpy_ok(inv):
    """Can this board load our bytecode .mpy files?"""
    major, _ = fw.decode_sys_mpy(inv.get("mpy") or 0)
    return major == fw.MPY_MAJOR


def board_native_arch(inv, cross_version):
    """The mpy-cross -march name to build the board's machine-code modules for, or None when
    the board cannot load ours: no native code, or another .mpy sub-version (native code must
    match it exactly; bytecode need not)."""
    n = inv.get("mpy") or 0
    if cross_version is None or fw.decode_sys_mpy(n) != tuple(cross_version):
        return None
    return fw.native_arch(n)


def make_plan(port, inv, base_raw, overlays, build_dir, args):
    plan = Plan(port, inv)
    raw = base_raw
    ov = overlays.get(plan.uid)
    if ov is not None:
        raw = fw.merge(base_raw, ov)
        plan.overlay = True
    cfg, errors = fw.validate(raw)
    if errors:
        plan.errors = ["config for board %s%s: %s" % (plan.uid, " (with its overlay)" if ov else "",
                                                       e) for e in errors]
        return plan
    plan.config = cfg
    cdir = build_dir / "boards" / plan.uid
    cdir.mkdir(parents=True, exist_ok=True)
    # One file per deploy process: deploys running at once to boards with the same id (the
    # emulated boards all have one) must not copy each other's config.
    cfile = cdir / ("config.%d.json" % os.getpid())
    if ov is None and Path(args.config).resolve() != cfile.resolve():
        cfile.write_bytes(Path(args.config).read_bytes())  # byte for byte, as the user wrote it
    else:
        cfile.write_bytes(fw.config_bytes(raw))
    want = {"config.json": cfile}
    for f in fw.FIRMWARE_FILES:
        want[f] = fw.ROOT / f
    if not args.no_lib:
        if args.source:
            for src in fw.lib_sources():
                want["lib/" + src.name] = src
        else:
            for src in fw.lib_sources():
                want["lib/" + src.stem + ".mpy"] = build_dir / "lib" / (src.stem + ".mpy")
            arch = board_native_arch(inv, getattr(args, "mpy_cross_version", None))
            if arch is not None:
                try:
                    for _src, mpy in fw.compile_native(arch, build_dir / ("lib-" + arch)):
                        want["lib/" + mpy.name] = mpy
                except (RuntimeError, OSError) as e:
                    plan.errors = ["cannot compile lib/ for %s: %s" % (arch, e)]
                    return plan
    plan.files = want
    have = inv.get("files") or {}
    for remote, local in sorted(want.items()):
        if args.force or have.get(remote) != fw.sha256(local.read_bytes()):
            plan.copy.append(remote)
    if not args.source and not args.no_lib:
        # MicroPython imports X.py before X.mpy from the same folder.
        for src in fw.lib_sources():
            if "lib/" + src.name in have:
                plan.remove.append("lib/" + src.name)
    if not args.no_lib:
        # Machine code of an older lib/ would run instead of the new one.
        for name in fw.NATIVE_MODULES:
            stale = "lib/%s_native.mpy" % name
            if stale in have and stale not in want:
                plan.remove.append(stale)
    return plan


def copy_args(plan):
    """One mpremote command line (after `connect PORT resume`) doing the plan."""
    argv = []
    if not plan.inv.get("lib") and any(r.startswith("lib/") for r in plan.copy):
        argv += ["fs", "mkdir", ":lib", "+"]
    for remote in plan.copy:
        argv += ["fs", "cp", "-f", str(plan.files[remote]), ":" + remote, "+"]
    for remote in plan.remove:
        argv += ["fs", "rm", ":" + remote, "+"]
    return argv[:-1]


def run(args):
    out = print
    # 1. Everything that can be refused without a board.
    raw, cfg, errors = fw.check_file(args.config)
    if errors:
        fw.print_errors("deploy: %s has " % args.config, errors, "; nothing was copied:", out)
        return exitcode.FAILED
    boards_file = args.boards
    if boards_file is None:
        cand = Path(args.config).resolve().parent / "boards.json"
        boards_file = str(cand) if cand.exists() else None
    overlays = {}
    if boards_file:
        overlays, errs = fw.load_overlays(boards_file)
        for uid, ov in sorted(overlays.items()):
            _, e2 = fw.validate(fw.merge(raw, ov))
            errs += ["%s [%s]: %s" % (boards_file, uid, e) for e in e2]
        if errs:
            fw.print_errors("deploy: %s has " % boards_file, errs, "; nothing was copied:", out)
            return exitcode.FAILED
    build_dir = fw.BUILD
    if not args.no_lib and not args.source:
        try:
            text, ver = fw.mpy_cross_version()
            args.mpy_cross_version = ver
            compiled = fw.compile_lib(build_dir / "lib")
        except (RuntimeError, OSError) as e:
            out("deploy: cannot compile lib/: %s; nothing was copied" % e)
            return exitcode.FAILED
        out("deploy: compiled %d modules with %s into %s" % (
            len(compiled), text.split(";")[-1].strip(), (build_dir / "lib").relative_to(fw.ROOT)
            if (build_dir / "lib").is_relative_to(fw.ROOT) else build_dir / "lib"))
    try:
        ports = boardlink.resolve_ports(args.port)
    except boardlink.LinkError as e:
        boardlink.print_problem("deploy", e)
        return exitcode.USAGE
    # 2. Read every board, plan every board; refuse before copying anything.
    plans = []
    for port in ports:
        try:
            inv = inventory(port)
        except boardlink.LinkError as e:
            boardlink.print_problem("deploy", e)
            return exitcode.USAGE
        if not args.source and not args.no_lib and not board_mpy_ok(inv):
            major, minor = fw.decode_sys_mpy(inv.get("mpy") or 0)
            out("deploy: %s runs MicroPython %s, which loads .mpy v%d, not v%d: flash MicroPython "
                "1.29 (firmware/README.md) or deploy with --source" % (
                    port, inv.get("version"), major, fw.MPY_MAJOR))
            return exitcode.FAILED
        plans.append(make_plan(port, inv, raw, overlays, build_dir, args))
    problems = [e for p in plans for e in p.errors]
    seen = {}
    for p in plans:
        ip = p.config and fw.static_ip(p.config)
        if ip:
            if ip in seen:
                problems.append("boards %s (%s) and %s (%s) would both use the static address %s: "
                                "give each its own in %s" % (
                                    seen[ip].uid, seen[ip].port, p.uid, p.port, ip,
                                    boards_file or "boards.json"))
            seen[ip] = p
    if problems:
        out("deploy: refused; nothing was copied:")
        for e in problems:
            out("  " + e)
        _restart(plans, out)
        return exitcode.FAILED
    # 3. Copy, reboot, follow.
    failed = 0
    for p in plans:
        failed += 0 if deploy_one(p, args, out) else 1
    if len(plans) > 1:
        out("deploy: %d of %d board(s) up" % (len(plans) - failed, len(plans)))
    return exitcode.FAILED if failed else exitcode.PASSED


def _restart(plans, out):
    """The inventory stopped each relay (Ctrl-C): start them again."""
    for p in plans:
        if "main.py" not in (p.inv.get("files") or {}):
            continue  # nothing was running
        try:
            boardlink.reboot_and_follow(p.port, timeout=5)
        except boardlink.LinkError as e:
            out("deploy: %s: could not restart the relay: %s" % (p.port, e))


def deploy_one(p, args, out):
    label = "%s (board %s)" % (p.port, p.uid)
    net = p.config["network"]
    where = "DHCP" if net["dhcp"] else net["ip"]
    out("deploy: %s: %s%s, %d route(s)" % (
        label, where, ", overlay from boards file" if p.overlay else "",
        len(p.config["routes"])))
    if not p.copy and not p.remove:
        out("deploy: %s: up to date, nothing to copy%s" % (
            label, "" if args.no_reboot or args.dry_run else " (rebooting: reading the board stopped its relay)"))
    for remote in p.copy:
        out("  %s %s" % ("would copy" if args.dry_run else "copy", remote))
    for remote in p.remove:
        why = "older machine code" if remote.endswith("_native.mpy") else "would shadow the .mpy"
        out("  %s %s (%s)" % ("would remove" if args.dry_run else "remove", remote, why))
    if args.dry_run:
        unchanged = len(p.files) - len(p.copy)
        out("deploy: %s: dry run: %d to copy, %d unchanged, %d to remove" % (
            label, len(p.copy), unchanged, len(p.remove)))
        _restart([p], out)
        return True
    if p.copy or p.remove:
        try:
            boardlink.mpremote(p.port, *copy_args(p), timeout=300)
        except boardlink.LinkError as e:
            out("deploy: %s: copy failed: %s" % (label, e))
            return False
        out("deploy: %s: copied %d file(s)%s" % (
            label, len(p.copy), ", removed %d" % len(p.remove) if p.remove else ""))
    if args.no_reboot:
        out("deploy: %s: not rebooted (--no-reboot); the relay is stopped until the next reset"
            % label)
        return True
    out("deploy: %s: %s, boot log:" % (label, "hard reset" if args.hard_reset else "soft reboot"))
    try:
        boot = boardlink.reboot_and_follow(p.port, args.boot_timeout, lambda line: out("  | " + line),
                                           hard=args.hard_reset)
    except boardlink.LinkError as e:
        out("deploy: %s: %s" % (label, e))
        return False
    return report_boot(label, boot, p.config, out, args.boot_timeout)


def report_boot(label, boot, cfg, out, timeout=40):
    why = boot.diagnosis(timeout)
    chip = boot.chip_problems()  # said once, in the FAILED line
    for w in boot.warnings:
        if not any(c in w for c in chip):
            out("deploy: %s: warning: %s" % (label, w))
    if why is not None:
        out("deploy: %s: FAILED: %s (see the boot log above)" % (label, why))
        return False
    s = boot.status
    want_ip = fw.static_ip(cfg)
    if want_ip and s["ip"] != want_ip:
        out("deploy: %s: FAILED: the board runs %s, not the deployed %s (an older config?)"
            % (label, s["ip"], want_ip))
        return False
    note = ""
    if s["link"] != "up":
        note = " (no Ethernet link: check the cable)"
    out("deploy: %s: OK: %s%s" % (label, boot.summary(), note))
    return True


def inventory(port):
    """The board's unique id, .mpy version and files with their SHA-256."""
    return boardlink.exec_json(port, INVENTORY, INVENTORY_MARK)
