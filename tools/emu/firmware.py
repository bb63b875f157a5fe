"""The firmware image the emulated board runs: the official MicroPython UF2 for the
W5100S-EVB-Pico or the W5500-EVB-Pico, taken by path (``--firmware`` or the
``MCAST_RELAY_FIRMWARE`` variable; several paths separated by ``:``). The project carries no
image: users download it from micropython.org as they do to flash a board."""

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

ENV = "MCAST_RELAY_FIRMWARE"
UF2_MAGIC = (0x0A324655, 0x9E5D5157)
UF2_END = 0x0AB16F30
RP2040_FAMILY = 0xE48BFF56
# Board name in the image (MICROPY_HW_BOARD_NAME) -> the WIZnet chip on that board.
BOARDS = {b"W5100S-EVB-Pico": "w5100s", b"W5500-EVB-Pico": "w5500"}
HOW_TO_GET = ("download the W5100S_EVB_PICO or W5500_EVB_PICO .uf2 of MicroPython 1.28 or 1.29 "
              "from https://micropython.org/download/ and pass it with --firmware PATH or %s=PATH"
              % ENV)


class FirmwareError(ValueError):
    pass


@dataclass(frozen=True)
class Firmware:
    path: Path
    sha256: str
    version: str  # "1.28.0"
    board: str  # "W5100S-EVB-Pico"
    chip: str  # "w5100s" | "w5500"

    @property
    def name(self):
        return self.path.name

    def describe(self):
        return "%s (MicroPython %s, %s, sha256 %s)" % (self.name, self.version, self.board,
                                                       self.sha256[:16])


def configured():
    """The image paths named by the environment (may be empty)."""
    raw = os.environ.get(ENV, "").strip()
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def uf2_payload(data):
    """The flash contents a UF2 carries (RP2040 blocks only), as one bytes object."""
    if not data or len(data) % 512:
        raise FirmwareError("not a UF2 image (%d bytes, not whole 512-byte blocks)" % len(data))
    chunks = {}
    for off in range(0, len(data), 512):
        m0, m1, flags, addr, size, _, _, family = struct.unpack_from("<8I", data, off)
        if (m0, m1) != UF2_MAGIC or struct.unpack_from("<I", data, off + 508)[0] != UF2_END:
            raise FirmwareError("not a UF2 image (bad block at offset %d)" % off)
        if flags & 1 or (flags & 0x2000 and family != RP2040_FAMILY):
            continue
        chunks[addr] = data[off + 32:off + 32 + size]
    if not chunks:
        raise FirmwareError("the UF2 image holds no RP2040 blocks")
    return b"".join(chunks[a] for a in sorted(chunks))


def identify(path):
    """Check that path is a MicroPython image for one of the two boards; describe it."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FirmwareError("%s: cannot read the firmware image: %s"
                            % (path, e.strerror or e)) from None
    try:
        payload = uf2_payload(data)
    except FirmwareError as e:
        raise FirmwareError("%s: %s" % (path, e)) from None
    m = re.search(rb"MicroPython v(\d+\.\d+\.\d+)", payload)
    if not m:
        raise FirmwareError("%s: no MicroPython version string in the image" % path)
    version = m.group(1).decode()
    board = next((b for b in BOARDS if b in payload), None)
    if board is None:
        raise FirmwareError("%s: MicroPython %s, but not for the W5100S-EVB-Pico or the "
                            "W5500-EVB-Pico (no WIZnet board name in it)" % (path, version))
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) not in ((1, 28), (1, 29)):
        raise FirmwareError("%s: MicroPython %s; the relay is made for 1.28 and 1.29"
                            % (path, version))
    return Firmware(path.resolve(), hashlib.sha256(data).hexdigest(), version, board.decode(),
                    BOARDS[board])


def resolve(path=None):
    """The image to run: path, else the first of the environment's; FirmwareError if none."""
    if path is None:
        named = configured()
        if not named:
            raise FirmwareError("no firmware image: " + HOW_TO_GET)
        path = named[0]
    return identify(path)
