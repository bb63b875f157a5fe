# The twin's control plane, shared by the fake `machine`, `network` and the
# lwIP `socket` personality (MicroPython code). Everything comes from the
# environment the host side sets:
#   TWIN_IFACE    the board namespace's interface (its "PHY"), e.g. eth0
#   TWIN_CONTROL  a JSON file the host rewrites to inject faults
#   TWIN_STATE    a folder for what survives a reset (reset cause)
#   TWIN_UID      the board's unique id as 16 hex digits
#   TWIN_DHCP     the address/prefix a DHCP server on the LAN would lease
# Control-file keys (Board.control(**faults); times are unix times):
#   link: bool                the PHY link, overriding the interface's carrier
#   chip_absent, chip_in_reset, miso_high, chip_stuck: T, chip_type
#                             the chip on the SPI wires (fakes/twinchip.py): where it
#                             would not answer, active(True) spins forever, as the
#                             real driver does (it never raises for a missing chip)
#   bootsel: bool             the BOOTSEL button is held (fakes/rp2.py)
#   chip_hang: T              the chip wedges at T: the next send never returns
#   chip_reset: T             the chip resets itself at T: the driver takes the
#                             netif down on the next send (see fakes/network.py)
#   reset_ms, dhcp_ms, dhcp   activation delay, DHCP delay, the DHCP lease
#   pins: {"N": 0|1}          input levels
import json
import os
import time

_env = os.getenv

# The netif as lwIP sees it, written by the fake NIC, read by the lwIP socket
# personality: address, interface up, DHCP client running (holds a UDP PCB).
nic = {"ip": "0.0.0.0", "up": False, "dhcp": False}
down_hooks = []  # called when the NIC is de-activated (groups are dropped)
# A chip fault armed by the fake NIC (from the control file, when the firmware
# polls status()/isconnected()) and sprung by the next frame lwIP sends: the
# lwIP socket's sendto calls it. None = the chip is fine (one check per send).
tx_fault = None


def netif_down():
    for h in down_hooks:
        h()


def iface():
    return _env("TWIN_IFACE")


def control():
    """The fault-injection file as a dict ({} when absent or unreadable)."""
    path = _env("TWIN_CONTROL")
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def failing(key):
    """True while control()[key] (a unix time) lies in the future, or is true."""
    v = control().get(key)
    if v is True:
        return True
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return time.time() < v
    return False


def carrier():
    """PHY link: the board namespace's interface carrier (the cable)."""
    c = control().get("link")
    if c is not None:
        return bool(c)
    name = iface()
    if not name:
        return True
    try:
        with open("/sys/class/net/%s/carrier" % name) as f:
            return f.read().strip() == "1"
    except OSError:
        return False  # an interface that is down has no readable carrier


def sh(cmd):
    """Run a command in the board's namespace (ip addr/route changes)."""
    return os.system(cmd + " >/dev/null 2>&1")


def pin_level(pin, default):
    v = control().get("pins", {}).get(str(pin))
    return default if v is None else (1 if v else 0)


def unique_id():
    h = _env("TWIN_UID") or "e661410403000001"
    return bytes(int(h[i:i + 2], 16) for i in range(0, 16, 2))


def boot_cause():
    return _env("TWIN_BOOT_CAUSE") or "PWRON"


def _pid():
    with open("/proc/self/stat") as f:
        return int(f.read().split()[0])


def reset(cause):
    """End this board process the way a reset ends a board; the host side's
    supervisor sees the marker and starts the board again."""
    state = _env("TWIN_STATE")
    if state:
        with open(state + "/reset", "w") as f:
            f.write(cause)
    os.system("kill -9 %d" % _pid())
    time.sleep(10)


_wdt = [0, 0]  # [timeout_ms, last feed ticks]


def wdt_start(timeout):
    started = _wdt[0] != 0
    _wdt[0] = timeout
    _wdt[1] = time.ticks_ms()
    if started:
        return
    import _thread

    def watch():
        while True:
            time.sleep_ms(50)
            if time.ticks_diff(time.ticks_ms(), _wdt[1]) > _wdt[0]:
                reset("WDT")

    _thread.start_new_thread(watch, ())


def wdt_feed():
    _wdt[1] = time.ticks_ms()
