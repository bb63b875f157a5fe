# The twin's WIZnet chip, as much of it as the firmware reaches over
# machine.SPI before the driver runs (lib/wizchip.py: version register, a
# software reset, a socket command), on the board's wiring: SPI0 SCK 18,
# MOSI 19, MISO 16, CS 17. Control-file keys (twinctl; a unix time T means
# "until T", true means "always"):
#   chip_absent    no chip on the wires: MISO floats (the pad's pull-down: 0x00)
#   chip_in_reset  RST held low: the chip drives nothing
#   miso_high      MISO stuck high: every byte reads 0xFF
#   chip_stuck     the chip answers its version but never completes a command
#   chip_type      "w5100s" (default) or "w5500": the chip on the board
# The driver (fakes/network.py) asks reachable() and, like the real one, spins
# forever where this chip would not answer.
import time

import twinctl

WIRES = {"spi": 0, "sck": 18, "mosi": 19, "miso": 16, "cs": 17}
driven = {}  # GPIO -> level an output Pin drives (the chip sees CS through it)
_regs = {}


def kind():
    return twinctl.control().get("chip_type", "w5100s")


def _answers():
    return not (twinctl.failing("chip_absent") or twinctl.failing("chip_in_reset")
                or twinctl.failing("miso_high"))


def _on_wires(spi_id, sck, mosi, miso):
    return (spi_id, sck, mosi, miso) == (WIRES["spi"], WIRES["sck"], WIRES["mosi"],
                                         WIRES["miso"])


def reachable(spi_id, sck, mosi, miso, cs):
    """Would the driver, on these wires, find a chip that completes its commands?"""
    return (_answers() and not twinctl.failing("chip_stuck") and _on_wires(spi_id, sck, mosi, miso)
            and cs == WIRES["cs"])


def _reg(addr, block, write, value):
    key = (block, addr)
    if write:
        stuck = twinctl.failing("chip_stuck")
        if key in ((0, 0x0000), (0, 0x0401), (1, 0x0001)):  # MR.RST / socket 0 Sn_CR
            _regs[key] = value if stuck else 0  # the chip takes it at once, unless stuck
        else:
            _regs[key] = value
        return 0
    if kind() == "w5100s" and key == (0, 0x0080):
        return 0x51  # VERR
    if kind() == "w5500" and key == (0, 0x0039):
        return 0x04  # VERSIONR
    return _regs.get(key, 0)


def transfer(spi_id, sck, mosi, miso, data):
    """The bytes MISO carries back while `data` goes out (one CS frame)."""
    if twinctl.failing("miso_high"):
        return b"\xff" * len(data)
    out = bytearray(len(data))
    if not (_answers() and _on_wires(spi_id, sck, mosi, miso) and driven.get(WIRES["cs"]) == 0):
        return bytes(out)  # nobody drives MISO: the pull-down reads 0x00
    if len(data) >= 4:
        if kind() == "w5100s" and data[0] in (0x0F, 0xF0):
            out[3] = _reg((data[1] << 8) | data[2], 0, data[0] == 0xF0, data[3])
        elif kind() == "w5500":
            out[3] = _reg((data[0] << 8) | data[1], data[2] >> 3, bool(data[2] & 4), data[3])
    return bytes(out)


def spin_forever():
    """What network.WIZNET5K.active(True) does with no chip to talk to: the
    driver's register polling never ends, and Ctrl-C does not stop it (only
    the watchdog, a reset or power does)."""
    while True:
        try:
            time.sleep_ms(100)
        except KeyboardInterrupt:
            pass
