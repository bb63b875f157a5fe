# Stand-in for the rp2 port's `machine` module (MicroPython code, runs under
# the unix port). Follows ports/rp2: GPIO 0-29, SPI pin sets, WDT <= 8388 ms,
# reset causes, 8-byte unique id. Wrong calls fail the way the board fails.
import twinchip
import twinctl

PWRON_RESET = 1
WDT_RESET = 3

_GPIO_MAX = 29


def _pin_id(p):
    if isinstance(p, Pin):
        return p._id
    if isinstance(p, int) and not isinstance(p, bool):
        if 0 <= p <= _GPIO_MAX:
            return p
        raise ValueError("invalid pin")
    if isinstance(p, str):
        if p == "LED":
            return 25
        if p.startswith("GPIO") and p[4:].isdigit() and int(p[4:]) <= _GPIO_MAX:
            return int(p[4:])
        raise ValueError("unknown named pin")
    raise TypeError("expecting a Pin")


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None, alt=-1):
        self._id = _pin_id(id)
        self._mode = mode
        self._pull = pull
        self._value = 0 if value is None else (1 if value else 0)
        if mode == Pin.IN and pull == Pin.PULL_UP:
            self._value = twinctl.pin_level(self._id, 1)
        self._drive()

    def _drive(self):
        # What the chip on this wire sees (its CS).
        if self._mode == Pin.OUT:
            twinchip.driven[self._id] = self._value

    def __repr__(self):
        return "Pin(GPIO%d)" % self._id

    def init(self, mode=-1, pull=-1, *, value=None, alt=-1):
        self.__init__(self._id, mode, pull, value=value, alt=alt)

    def value(self, v=None):
        if v is None:
            if self._mode == Pin.IN:
                return twinctl.pin_level(self._id, self._value)
            return self._value
        self._value = 1 if v else 0
        self._drive()

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    high = on
    low = off

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        return None


# (pin & 3) and bit 3 select the function, as in ports/rp2/machine_spi.c
def _spi_ok(spi_id, pin, low2):
    return (pin & 3) == low2 and ((pin & 8) >> 3) == spi_id


_CLK_PERI = 48000000  # the rp2 port's peripheral clock (main.c sets it with the system clock)


def _spi_clock(asked):
    # As the pico-sdk's spi_set_baudrate picks it: the smallest even prescaler
    # (2-254) that brings the clock within 256x the rate, then the largest
    # post-divider (1-256) whose rate is not above the one asked.
    prescale = 2
    while prescale < 254 and _CLK_PERI >= prescale * 256 * asked:
        prescale += 2
    postdiv = 256
    while postdiv > 1 and _CLK_PERI // (prescale * (postdiv - 1)) <= asked:
        postdiv -= 1
    return _CLK_PERI // (prescale * postdiv)


class SPI:
    MSB = 1
    LSB = 0

    def __init__(self, id, baudrate=1000000, *, polarity=0, phase=0, bits=8,
                 firstbit=1, sck=None, mosi=None, miso=None):
        if not isinstance(id, int) or id not in (0, 1):
            raise ValueError("SPI(%s) doesn't exist" % (id,))
        self._id = id
        for pin, low2, name in ((sck, 2, "SCK"), (mosi, 3, "MOSI"), (miso, 0, "MISO")):
            if pin is not None and not _spi_ok(id, _pin_id(pin), low2):
                raise ValueError("bad %s pin" % name)
        if not isinstance(baudrate, int) or baudrate <= 0:
            raise ValueError("baudrate")
        self.baudrate = _spi_clock(baudrate)
        self.sck = _pin_id(sck) if sck is not None else None
        self.mosi = _pin_id(mosi) if mosi is not None else None
        self.miso = _pin_id(miso) if miso is not None else None

    def __repr__(self):
        return "SPI(%d, baudrate=%d, polarity=0, phase=0, bits=8, sck=%s, mosi=%s, miso=%s)" % (
            self._id, self.baudrate, self.sck, self.mosi, self.miso)

    def init(self, *a, **k):
        pass

    def deinit(self):
        pass

    def _xfer(self, data):
        return twinchip.transfer(self._id, self.sck, self.mosi, self.miso, data)

    def write(self, buf):
        self._xfer(bytes(buf))

    def read(self, n, write=0):
        return self._xfer(bytes([write]) * n)

    def readinto(self, buf, write=0):
        buf[:] = self._xfer(bytes([write]) * len(buf))

    def write_readinto(self, wbuf, rbuf):
        if len(wbuf) != len(rbuf):
            raise ValueError("buffers must be the same length")
        rbuf[:] = self._xfer(bytes(wbuf))


_WDT_MAX = 8388


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if timeout > _WDT_MAX:
            raise ValueError("timeout exceeds %d" % _WDT_MAX)
        if timeout < 1:
            raise ValueError("timeout too short")
        twinctl.wdt_start(timeout)

    def feed(self):
        twinctl.wdt_feed()


class Timer:
    """rp2's soft timer (ports/rp2/machine_timer.c): only id -1; the callback
    is scheduled, so it runs between bytecodes or at the REPL, never inside a
    C call that blocks. Here: a thread under the unix port's GIL."""

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        if id != -1:
            raise ValueError("Timer doesn't exist")
        self._gen = 0
        if kw:
            self.init(**kw)

    def init(self, *, mode=PERIODIC, callback=None, period=0xFFFFFFFF, tick_hz=1000,
             freq=None):
        self.deinit()
        self._mode = mode
        self._ms = max(1, (1000 // freq) if freq else period * 1000 // tick_hz)
        gen = self._gen

        def run():
            import time
            while True:
                time.sleep_ms(self._ms)
                if self._gen != gen:
                    return
                if callback is not None:
                    callback(self)
                if self._mode == Timer.ONE_SHOT:
                    return

        import _thread
        _thread.start_new_thread(run, ())

    def deinit(self):
        self._gen += 1


def reset():
    # A soft machine.reset() reports WDT_RESET on rp2, as the board does.
    twinctl.reset("WDT")


def soft_reset():
    raise SystemExit


def reset_cause():
    return WDT_RESET if twinctl.boot_cause() == "WDT" else PWRON_RESET


def unique_id():
    return twinctl.unique_id()


def freq(*a):
    return 125000000


def idle():
    pass


def lightsleep(ms=None):
    import time
    time.sleep_ms(ms or 0)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def bootloader():
    twinctl.reset("BOOTLOADER")

