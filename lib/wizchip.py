# Ask the WIZnet chip before the driver does. network.WIZNET5K(...).active(True)
# spins forever, and Ctrl-C cannot stop it, when no chip answers on the SPI pins
# (absent, held in reset, nic.* pins that do not match the wiring) or when the
# chip never completes a command: called from boot.py that leaves no REPL and
# no way to fix config.json but erasing the flash. These few register reads
# over machine.SPI always return, so the driver is called only for a chip that
# behaves. Register map: W5100S and W5500 datasheets (common registers MR and
# version, socket 0's command register).
import time

import machine
from micropython import const

W5100S = "w5100s"
W5500 = "w5500"
_VERSION = {W5100S: 0x51, W5500: 0x04}  # W5100S VERR (0x0080), W5500 VERSIONR (0x0039)
_MR_RST = const(0x80)  # MR bit 7: software reset, cleared by the chip when done
_SN_CR_CLOSE = const(0x10)  # Sn_CR command; the chip sets Sn_CR to 0 once it took it
_READY_MS = const(160)  # after RST, as the driver waits (network_wiznet5k.c: "datasheet says 150ms")
_COMMAND_MS = const(20)  # a command takes microseconds; 20 ms means it never will


class _Bus:
    """One chip on SPI with its CS pin; each chip frames a register access its own way."""

    def __init__(self, chip, spi, cs):
        self.chip = chip
        self.spi = spi
        self.cs = cs
        self._buf = bytearray(4)

    def _frame(self, addr, block, write, value):
        b = self._buf
        if self.chip == W5100S:  # opcode, 16-bit address, data
            b[0] = 0xF0 if write else 0x0F
            b[1] = addr >> 8
            b[2] = addr & 0xFF
        else:  # W5500: 16-bit offset, control (block select, read/write, variable length), data
            b[0] = addr >> 8
            b[1] = addr & 0xFF
            b[2] = (block << 3) | (4 if write else 0)
        b[3] = value
        self.cs(0)
        try:
            self.spi.write_readinto(b, b)
        finally:
            self.cs(1)
        return b[3]

    def read(self, addr, block=0):
        return self._frame(addr, block, False, 0)

    def write(self, addr, value, block=0):
        self._frame(addr, block, True, value)

    def version(self):
        return self.read(0x0080) if self.chip == W5100S else self.read(0x0039)

    def socket0_cr(self):
        # socket 0's registers: W5100S at 0x0400 (Sn_CR 0x0401), W5500 block 1 (Sn_CR 0x0001)
        return (0x0401, 0) if self.chip == W5100S else (0x0001, 1)


def _wait_clear(read, mask, ms):
    end = time.ticks_add(time.ticks_ms(), ms)
    while True:
        v = read()
        if not v & mask:
            return True, v
        if time.ticks_diff(end, time.ticks_ms()) <= 0:
            return False, v
        time.sleep_ms(1)


def where(c):
    """The wiring the config names, as people read it on the board."""
    return "SPI%d (sck %d, mosi %d, miso %d, cs %d, rst %d)" % (
        c["spi"], c["sck"], c["mosi"], c["miso"], c["cs"], c["rst"])


def probe(c, expect):
    """Pulse RST, read the version register of the chip `expect` ("w5100s" or
    "w5500"), then check that it completes a software reset and a socket
    command. Returns None when it does, else the problem in one line naming
    the nic.* keys and what was read."""
    Pin = machine.Pin
    rst = Pin(c["rst"], Pin.OUT, value=1)
    cs = Pin(c["cs"], Pin.OUT, value=1)
    # The driver's settings exactly: it shares this SPI block (so no deinit).
    spi = machine.SPI(c["spi"], baudrate=c["baudrate"], polarity=0, phase=0,
                      sck=Pin(c["sck"]), mosi=Pin(c["mosi"]), miso=Pin(c["miso"]))
    rst(0)
    time.sleep_ms(2)
    rst(1)
    time.sleep_ms(_READY_MS)
    bus = _Bus(expect, spi, cs)
    got = bus.version()
    name = expect.upper()
    if got != _VERSION[expect]:
        other = W5500 if expect == W5100S else W5100S
        if _Bus(other, spi, cs).version() == _VERSION[other]:
            return ("a %s answers on %s, but this firmware and nic.chip expect a %s: "
                    "flash the %s_EVB_PICO image, or set nic.chip" % (
                        other.upper(), where(c), name, other.upper()))
        return ("no %s answers on %s: read 0x%02x (its version register reads 0x%02x); "
                "check the wiring and nic.* in config.json" % (
                    name, where(c), got, _VERSION[expect]))
    bus.write(0x0000, _MR_RST)
    ok, mr = _wait_clear(lambda: bus.read(0x0000), _MR_RST, _COMMAND_MS)
    if not ok:
        return ("the %s on %s answers (version 0x%02x) but does not finish a reset (MR stays "
                "0x%02x): a faulty or badly powered chip; power the board off and on" % (
                    name, where(c), got, mr))
    addr, block = bus.socket0_cr()
    bus.write(addr, _SN_CR_CLOSE, block)
    ok, cr = _wait_clear(lambda: bus.read(addr, block), 0xFF, _COMMAND_MS)
    if not ok:
        return ("the %s on %s answers (version 0x%02x) but does not complete a command "
                "(socket 0 command register stays 0x%02x): a faulty or badly powered chip; "
                "power the board off and on" % (name, where(c), got, cr))
    return None


def expected(chip, board_name):
    """nic.chip "auto": the chip of the board this firmware was built for."""
    if chip != "auto":
        return chip
    return W5500 if "W5500" in board_name else W5100S
