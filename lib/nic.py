# The WIZnet NIC: SPI + network.WIZNET5K from config.json's "nic" section,
# static IP or DHCP from "network", a bounded wait for link, a status line.
import sys
import time

import machine
import network
import wizchip


def _mac_text(mac):
    return ":".join("%02x" % b for b in mac)


def _prefix(mask):
    n = 0
    for part in mask.split("."):
        v = int(part)
        while v:
            n += v & 1
            v >>= 1
    return n


def _spi_hz(spi, asked):
    """The clock the port programmed: machine.SPI's repr says (baudrate=N).
    The rp2 firmware divides a 48 MHz clock by 2 or more: 20 MHz asked is 12."""
    text = repr(spi)
    i = text.find("baudrate=")
    if i < 0:
        return asked
    j = i + 9
    while j < len(text) and "0" <= text[j] <= "9":
        j += 1
    return int(text[i + 9:j]) if j > i + 9 else asked


class ChipError(OSError):
    """No chip, or one that misbehaves, where the config says the chip is: the driver
    would spin forever (Ctrl-C cannot stop it), so it is not called. An OSError, as a
    chip that does not answer is, so every NIC retry handles it; it shows as its text,
    which names the nic.* keys and what was read."""

    def __repr__(self):
        return self.args[0]


class Nic:
    def __init__(self, nic_cfg, net_cfg):
        self.nic_cfg = nic_cfg
        self.net_cfg = net_cfg
        self.wiz = None
        self.spi_hz = None  # the SPI clock in effect (None before construction)
        self.stage = None  # the step bring_up()/reactivate() was at: for messages
        self.chip = wizchip.expected(nic_cfg.get("chip", "auto"), sys.implementation._machine)

    def check_chip(self):
        """Ask the chip (lib/wizchip.py) before any driver call that could hang."""
        self.stage = "chip check"
        problem = wizchip.probe(self.nic_cfg, self.chip)
        if problem is not None:
            raise ChipError(problem)

    def bring_up(self):
        """Construct and activate the NIC and apply the address. Raises
        OSError/ValueError/TypeError from the driver (self.stage says which
        step); the caller retries."""
        c = self.nic_cfg
        Pin = machine.Pin
        self.check_chip()
        if self.wiz is None:
            self.stage = "construction (SPI%d, WIZNET5K)" % c["spi"]
            spi = machine.SPI(c["spi"], baudrate=c["baudrate"], sck=Pin(c["sck"]),
                              mosi=Pin(c["mosi"]), miso=Pin(c["miso"]))
            self.spi_hz = _spi_hz(spi, c["baudrate"])
            if c["intn"] is None:
                self.wiz = network.WIZNET5K(spi, Pin(c["cs"]), Pin(c["rst"]))
            else:
                self.wiz = network.WIZNET5K(spi, Pin(c["cs"]), Pin(c["rst"]), Pin(c["intn"]))
        self.stage = "activation"
        self.wiz.active(True)
        self.stage = "address"
        self.apply_address()
        self.stage = None

    def apply_address(self):
        n = self.net_cfg
        if n["dhcp"]:
            self.wiz.ifconfig("dhcp")
        else:
            self.wiz.ifconfig((n["ip"], n["netmask"], n["gateway"], n["dns"]))

    def reactivate(self):
        """active(False) dropped the address and every group: start again."""
        if self.wiz is None:
            self.bring_up()
            return
        try:
            self.wiz.active(False)
        except OSError:
            pass
        self.check_chip()
        self.stage = "activation"
        self.wiz.active(True)
        self.stage = "address"
        self.apply_address()
        self.stage = None

    def wait_connected(self, timeout_s, wdt=None):
        if self.wiz is None:
            return False
        deadline = time.ticks_add(time.ticks_ms(), timeout_s * 1000)
        while not self.wiz.isconnected():
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return False
            if wdt is not None:
                wdt.feed()
            time.sleep_ms(100)
        return True

    def link(self):
        """The PHY link (cable): status() is 0 without it."""
        return self.wiz is not None and self.wiz.status() != 0

    def active(self):
        return self.wiz is not None and self.wiz.active()

    def connected(self):
        return self.wiz is not None and self.wiz.isconnected()

    def ip(self):
        if self.wiz is None:
            return "0.0.0.0"
        return self.wiz.ifconfig()[0]

    def mac(self):
        return _mac_text(self.wiz.config("mac"))

    def status_line(self, version, ttl_note):
        c = self.nic_cfg
        ip, mask, gw, _ = self.wiz.ifconfig()
        if c["intn"] is None:
            irq = "no INTN: polled every 64 ms"
        else:
            irq = "INTN GP%d" % c["intn"]
        mode = "dhcp" if self.net_cfg["dhcp"] else "static"
        link = "up" if self.link() else "DOWN"
        hz = self.spi_hz or c["baudrate"]
        clock = "%.1f MHz" % (hz / 1e6)
        if hz != c["baudrate"]:
            clock += " (nic.baudrate %.2f MHz)" % (c["baudrate"] / 1e6)
        return "mcast-relay %s | MicroPython %s | WIZNET5K SPI%d %s %s | MAC %s | IP %s/%d gw %s (%s) | link %s | %s" % (
            version, _mpy_version(), c["spi"], clock, irq, self.mac(), ip,
            _prefix(mask), gw, mode, link, ttl_note)


def _mpy_version():
    v = sys.implementation.version
    return "%d.%d.%d" % (v[0], v[1], v[2])
