# Stand-in for the rp2 port's `network` module with WIZNET5K on lwIP
# (extmod/network_wiznet5k.c). The "PHY" is the board namespace's interface:
# pulling its cable drops the carrier that status()/isconnected() read.
# ifconfig() really configures that interface, so the rest of the LAN sees the
# board at the address its config.json names.
import time

import twinchip
import twinctl
from machine import SPI, Pin

STAT_IDLE = 0

_DEFAULT = (0, 20000000, 18, 19, 16, 17, 20, 21)  # spi, baud, sck, mosi, miso, cs, rst, intn
_ZERO = "0.0.0.0"


def _prefix_len(mask):
    n = 0
    for part in mask.split("."):
        n += bin(int(part)).count("1")
    return n


class WIZNET5K:
    def __init__(self, *args, **kw):
        if kw:
            raise TypeError("function doesn't take keyword arguments")
        n = len(args)
        if n == 0:
            d = _DEFAULT
            spi = SPI(d[0], d[1], sck=Pin(d[2]), mosi=Pin(d[3]), miso=Pin(d[4]))
            cs, rst, intn = Pin(d[5]), Pin(d[6]), Pin(d[7])
        elif 3 <= n <= 4:
            spi = args[0]
            if not isinstance(spi, SPI):
                raise TypeError("expecting an SPI object")
            cs = Pin(args[1]) if not isinstance(args[1], Pin) else args[1]
            rst = Pin(args[2]) if not isinstance(args[2], Pin) else args[2]
            intn = None
            if n == 4:
                intn = args[3] if isinstance(args[3], Pin) else Pin(args[3])
        else:
            raise TypeError("function takes 3 to 4 positional arguments but %d were given" % n)
        self._spi = spi
        self._cs = cs
        self._rst = rst
        self._intn = intn
        self._active = False
        self._ip = (_ZERO, _ZERO, _ZERO, _ZERO)
        self._dhcp = False
        self._dhcp_at = 0
        self._mac = b"\x02\x08\xdc" + twinctl.unique_id()[-3:]
        self._reset_at = time.time()  # the chip's last reset: faults after it apply
        twinctl.tx_fault = None

    def active(self, *args):
        if not args:
            return self._active
        if args[0]:
            if not self._active:
                s = self._spi
                if not twinchip.reachable(s._id, s.sck, s.mosi, s.miso, self._cs._id):
                    twinchip.spin_forever()
                # The driver pulses RST and re-initialises the chip here.
                time.sleep_ms(int(twinctl.control().get("reset_ms", 50)))
                self._reset_at = time.time()
                twinctl.tx_fault = None
                self._active = True
                self._ip = (_ZERO, _ZERO, _ZERO, _ZERO)
                self._apply()
                self._start_dhcp()  # lwIP init starts DHCP, as the driver does
        else:
            if self._active:
                self._active = False
                self._dhcp = False
                self._ip = (_ZERO, _ZERO, _ZERO, _ZERO)
                self._apply()
                twinctl.netif_down()
        return None

    def _start_dhcp(self):
        self._dhcp = True
        twinctl.nic["dhcp"] = True
        self._dhcp_at = time.ticks_add(time.ticks_ms(), int(twinctl.control().get("dhcp_ms", 300)))

    def _poll_dhcp(self):
        if not (self._dhcp and self._active) or self._ip[0] != _ZERO:
            return
        lease = twinctl.control().get("dhcp") or twinctl._env("TWIN_DHCP")
        if lease and twinctl.carrier() and time.ticks_diff(time.ticks_ms(), self._dhcp_at) >= 0:
            ip, plen = lease.split("/")
            plen = int(plen)
            m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            mask = "%d.%d.%d.%d" % (m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255)
            self._ip = (ip, mask, _ZERO, _ZERO)
            self._apply()

    def _apply(self):
        # Make the namespace's interface carry the address lwIP would have.
        twinctl.nic["ip"] = self._ip[0] if self._active else _ZERO
        twinctl.nic["up"] = self._active
        twinctl.nic["dhcp"] = self._dhcp and self._active
        name = twinctl.iface()
        if not name:
            return
        twinctl.sh("ip -4 addr flush dev %s" % name)
        if self._active and self._ip[0] != _ZERO:
            twinctl.sh("ip addr add %s/%d dev %s" % (self._ip[0], _prefix_len(self._ip[1]), name))
            twinctl.sh("ip route replace 224.0.0.0/4 dev %s" % name)
            if self._ip[2] != _ZERO:
                twinctl.sh("ip route replace default via %s dev %s" % (self._ip[2], name))

    # -- chip faults (fault injection; see the control keys in twinctl) --
    # "chip_hang": T  at unix time T the chip stops answering with its SPI
    #   reads stuck at 0xFF: the next frame sent never completes, because the
    #   driver (ioLibrary sendto) busy-waits `while (getSn_CR(sn));` for the
    #   command register to clear. The firmware is stuck in that sendto: only
    #   the watchdog gets it out. A reset of the chip (RST, as active(True) and
    #   a board reset do) clears it, so T only hits a chip reset before T.
    # "chip_reset": T  at unix time T the chip resets itself (brown-out, ESD):
    #   its MACRAW socket reads CLOSED, the next send fails, the driver prints
    #   "wiznet5k_send_ethernet: fatal error" and takes the netif down
    #   (netif_set_link_down + netif_set_down): status() 1, active() and
    #   isconnected() False, nothing more received; the datagram is lost
    #   although sendto returned. active(False)/active(True) restores it.
    def _arm_faults(self):
        if twinctl.tx_fault is not None or not self._active:
            return
        c = twinctl.control()
        now = time.time()
        for key, fault in (("chip_hang", self._hang), ("chip_reset", self._chip_reset)):
            t = c.get(key)
            if isinstance(t, (int, float)) and not isinstance(t, bool) and self._reset_at < t <= now:
                twinctl.tx_fault = fault
                return

    @staticmethod
    def _hang():
        while True:
            time.sleep_ms(50)

    def _chip_reset(self):
        twinctl.tx_fault = None
        print("wiznet5k_send_ethernet: fatal error -4")
        self._active = False  # IS_ACTIVE() is the netif's UP flag
        twinctl.nic["up"] = False
        twinctl.netif_down()  # nothing is received any more

    def isconnected(self):
        self._poll_dhcp()
        self._arm_faults()
        return twinctl.carrier() and self._active and self._ip[0] != _ZERO

    def status(self, *args):
        if args:
            raise ValueError("unknown status param")
        self._arm_faults()
        if not twinctl.carrier():
            return 0
        return 2 if self._active else 1

    def ifconfig(self, *args):
        if not args:
            self._poll_dhcp()
            return self._ip
        cfg = args[0]
        if cfg == "dhcp":
            self._ip = (_ZERO, _ZERO, _ZERO, _ZERO)
            self._apply()
            self._start_dhcp()
            return None
        if not isinstance(cfg, (tuple, list)) or len(cfg) != 4:
            raise TypeError("ifconfig needs a 4-tuple or 'dhcp'")
        for a in cfg:
            _check_ip(a)
        self._dhcp = False  # a static address stops the DHCP client
        self._ip = tuple(cfg)
        self._apply()
        return None

    def ipconfig(self, *args, **kw):
        if args:
            key = args[0]
            if key == "addr4":
                self._poll_dhcp()
                return (self._ip[0], self._ip[1])
            if key == "gw4":
                return self._ip[2]
            if key == "dhcp4":
                return self._dhcp
            raise ValueError("unexpected key")
        if kw.get("dhcp4"):
            self.ifconfig("dhcp")
        if "addr4" in kw:
            ip, plen = kw["addr4"].split("/")
            m = (0xFFFFFFFF << (32 - int(plen))) & 0xFFFFFFFF
            mask = "%d.%d.%d.%d" % (m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255)
            self.ifconfig((ip, mask, kw.get("gw4", self._ip[2]), self._ip[3]))
        return None

    def config(self, *args, **kw):
        if kw:
            if args:
                raise TypeError("can't specify pos and kw args")
            for k, v in kw.items():
                if k == "mac":
                    if len(v) != 6:
                        raise ValueError
                    self._mac = bytes(v)
                elif k != "trace":
                    raise ValueError("unknown config param")
            return None
        if len(args) != 1:
            raise TypeError("must query one param")
        if args[0] == "mac":
            return self._mac
        raise ValueError("unknown config param")

    def regs(self):
        print("Wiz CREG: (twin)")


def _check_ip(a):
    if not isinstance(a, str):
        raise TypeError("expected str")
    parts = a.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError("invalid arguments")


def hostname(*a):
    return "mpy-relay"


def country(*a):
    return "XX"
