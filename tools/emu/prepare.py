"""Flash images with the project deployed, made once and reused.

A test or a benchmark that needs "the firmware with this config on it" asks for a flash image:
the first time, an emulated board boots the blank flash (the firmware formats it), the
project's own `deploy` puts the files on it through mpremote over the emulated USB serial, and
the resulting flash is kept under build/emu/flash/, keyed by everything that went into it
(the image, lib/, boot.py, main.py, the config, extra files). Later requests copy it."""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import fw
from tools.emu.board import EmulatedBoard
from tools.emu.link import EmulatorError

CACHE = fw.BUILD / "emu" / "flash"


def _key(firmware, config_bytes, extra):
    h = hashlib.sha256()
    h.update(firmware.sha256.encode())
    for path in [fw.ROOT / "boot.py", fw.ROOT / "main.py", *fw.lib_sources()]:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(config_bytes)
    for remote, data in sorted(extra.items()):
        h.update(remote.encode() + b"\0" + data)
    return h.hexdigest()[:24]


def deploy(port, config_path, timeout=180, args=()):
    """The project's deploy against a serial port; returns (exit code, output)."""
    r = subprocess.run([sys.executable, "-m", "tools", "deploy", "--port", str(port),
                        "--config", str(config_path), "--boot-timeout", "120", *args],
                       cwd=fw.ROOT, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def flash_with(firmware, config, extra=None, log=None):
    """Path of a flash image holding the deployed project with `config` (a dict) and
    `extra` files ({remote path: bytes}, copied after the deploy, e.g. a main.py of a
    benchmark contender). Raises EmulatorError when the deploy fails."""
    extra = dict(extra or {})
    config_bytes = (json.dumps(config, indent=2) + "\n").encode()
    key = _key(firmware, config_bytes, extra)
    out = CACHE / ("%s.bin" % key)
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcr-emu-prep-") as tmp:
        tmp = Path(tmp)
        cfg_path = tmp / "config.json"
        cfg_path.write_bytes(config_bytes)
        board = EmulatedBoard(firmware, workdir=tmp / "board", console=False)
        board.start()
        try:
            code, text = deploy(board.dir / "tty", cfg_path,
                                args=["--no-reboot"] if extra else [])
            if log:
                log(text)
            if code != 0:
                raise EmulatorError("deploy to the emulated board failed:\n" + text)
            if extra:
                argv = []
                for i, (remote, data) in enumerate(sorted(extra.items())):
                    local = tmp / ("extra%d" % i)
                    local.write_bytes(data)
                    argv += ["fs", "cp", str(local), ":" + remote, "+"]
                from tools import boardlink

                boardlink.mpremote(str(board.dir / "tty"), *argv[:-1], timeout=120)
        finally:
            board.stop()
        shutil.copyfile(board.flash_path, out)
    return out
