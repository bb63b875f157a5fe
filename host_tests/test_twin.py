"""The twin itself: fakes and the lwIP socket personality behave like the board,
and the seed tutorial's mistakes fail under it."""

import json
import os
import textwrap
import time

import pytest

from tools.twin import mpy
from tools.twin.lan import BOARD_IP

GROUP = "224.0.10.1"


# Prepended to every snippet: err(f) -> "ok", or the exception f() raised (its type, and
# its message with detail=True).
ERR = """
def err(f, detail=False):
    try:
        f()
    except Exception as e:
        return type(e).__name__ + (":" + str(e) if detail else "")
    return "ok"
"""


def run_fakes(code, tmp_path, control=None, lwip=False, env=None, host=None):
    ctl = tmp_path / "control.json"
    ctl.write_text(json.dumps(control or {}))
    paths = [mpy.FAKES] + ([mpy.LWIP] if lwip else []) + [mpy.LIB]
    e = {"TWIN_CONTROL": str(ctl), "TWIN_STATE": str(tmp_path)}
    if host is not None:
        e["TWIN_IFACE"] = host.ifname
    e.update(env or {})
    prefix = host.cmd([]) if host is not None else ()
    r = mpy.run_code(ERR + textwrap.dedent(code), path=paths, env=e, ns_prefix=prefix,
                     timeout=60)
    return r


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


# -- machine and network fakes -------------------------------------------------------


def test_machine_fake_follows_rp2(tmp_path):
    out = ok(run_fakes("""
        import machine
        from machine import Pin, SPI, WDT
        print(err(lambda: SPI(0, sck=Pin(10)), True))
        print(err(lambda: SPI(0, mosi=Pin(18)), True))
        print(err(lambda: SPI(1, miso=Pin(16)), True))
        print(err(lambda: SPI(2), True))
        print(err(lambda: SPI(0, 20000000, sck=Pin(18), mosi=Pin(19), miso=Pin(16)), True))
        print(err(lambda: WDT(timeout=8389), True))
        print(err(lambda: Pin(30), True))
        print(len(machine.unique_id()), machine.reset_cause() == machine.PWRON_RESET)
    """, tmp_path))
    assert out.split("\n")[:8] == [
        "ValueError:bad SCK pin", "ValueError:bad MOSI pin", "ValueError:bad MISO pin",
        "ValueError:SPI(2) doesn't exist", "ok", "ValueError:timeout exceeds 8388",
        "ValueError:invalid pin", "8 True"]


def test_reset_cause_after_watchdog(tmp_path):
    out = ok(run_fakes("import machine; print(machine.reset_cause() == machine.WDT_RESET)",
                       tmp_path, env={"TWIN_BOOT_CAUSE": "WDT"}))
    assert out.strip() == "True"


def test_wiznet_constructor_and_link(tmp_path):
    out = ok(run_fakes("""
        import network
        from machine import Pin, SPI
        spi = SPI(0, 20000000, sck=Pin(18), mosi=Pin(19), miso=Pin(16))
        print(err(lambda: network.WIZNET5K(spi, Pin(17), Pin(20), Pin(21))))
        print(err(lambda: network.WIZNET5K(spi, Pin(17))))
        print(err(lambda: network.WIZNET5K(spi=spi, cs=Pin(17), rst=Pin(20))))
        print(err(lambda: network.WIZNET5K("spi", Pin(17), Pin(20))))
        nic = network.WIZNET5K()
        print(nic.active(), nic.status(), nic.isconnected())
        nic.active(True)
        print(nic.status(), nic.isconnected())
        nic.ifconfig(("198.18.0.10", "255.254.0.0", "0.0.0.0", "0.0.0.0"))
        print(nic.isconnected(), nic.ifconfig()[0], len(nic.config("mac")))
        print(err(lambda: nic.config("essid")), err(lambda: nic.status("rssi")))
        nic.active(False)
        print(nic.isconnected(), nic.ifconfig()[0])
    """, tmp_path))
    assert out.split("\n")[:9] == [
        "ok", "TypeError", "TypeError", "TypeError",
        "False 1 False", "2 False", "True 198.18.0.10 6", "ValueError ValueError",
        "False 0.0.0.0"]


def test_link_follows_control(tmp_path):
    out = ok(run_fakes("""
        import network
        nic = network.WIZNET5K()
        nic.active(True)
        nic.ifconfig(("198.18.0.10", "255.254.0.0", "0.0.0.0", "0.0.0.0"))
        print(nic.status(), nic.isconnected())
    """, tmp_path, control={"link": False}))
    assert out.strip() == "0 False"



@pytest.mark.parametrize("fault", [{"chip_absent": True}, {"chip_in_reset": True},
                                   {"miso_high": True}, {"chip_stuck": True}, "wrong-cs"])
def test_activation_spins_forever_where_the_chip_would_not_answer(tmp_path, fault):
    """As the real driver: no exception, no return, and Ctrl-C does not get it out."""
    import signal
    import subprocess

    from tools.twin import mpy

    cs = 5 if fault == "wrong-cs" else 17
    control = {} if fault == "wrong-cs" else fault
    (tmp_path / "control.json").write_text(json.dumps(control))
    code = ("import network, machine\n"
            "spi = machine.SPI(0, 20000000, sck=machine.Pin(18), mosi=machine.Pin(19), "
            "miso=machine.Pin(16))\n"
            "nic = network.WIZNET5K(spi, machine.Pin(%d), machine.Pin(20))\n"
            "print('ACTIVATING')\nnic.active(True)\nprint('RETURNED')\n" % cs)
    env = dict(os.environ, MICROPYPATH=mpy.micropypath(mpy.FAKES, mpy.LIB),
               TWIN_CONTROL=str(tmp_path / "control.json"))
    p = subprocess.Popen([mpy.micropython_binary(), "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ACTIVATING"
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)  # Ctrl-C
        time.sleep(1.0)
        assert p.poll() is None, p.stdout.read()  # still spinning
    finally:
        p.kill()
        out = p.communicate()[0]
    assert "RETURNED" not in out and "OSError" not in out


def test_the_chip_answers_its_version_over_spi_only_on_its_wires(tmp_path):
    out = ok(run_fakes("""
        from machine import SPI, Pin
        spi = SPI(0, 20000000, sck=Pin(18), mosi=Pin(19), miso=Pin(16))
        cs = Pin(17, Pin.OUT, value=1)
        b = bytearray(4)
        spi.write_readinto(b'\\x0f\\x00\\x80\\x00', b)
        print(b[3])
        cs(0); spi.write_readinto(b'\\x0f\\x00\\x80\\x00', b); cs(1)
        print(b[3])
        other = Pin(5, Pin.OUT, value=1)
        other(0); spi.write_readinto(b'\\x0f\\x00\\x80\\x00', b); other(1)
        print(b[3])
    """, tmp_path))
    assert out.split() == ["0", str(0x51), "0"]


# -- the lwIP socket personality -----------------------------------------------------


def test_personality_constants(tmp_path):
    out = ok(run_fakes("""
        import socket
        print(socket.IPPROTO_IP, hex(socket.IP_ADD_MEMBERSHIP), socket.SO_BROADCAST)
        print([hasattr(socket, n) for n in ("IP_MULTICAST_TTL", "IP_MULTICAST_IF",
              "IP_MULTICAST_LOOP", "SO_RCVBUF", "inet_aton", "recvfrom_into")])
        print(socket.getaddrinfo("224.0.10.1", 5)[0][-1])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        print(hasattr(s, "recv_into"), hasattr(s, "recvfrom_into"))
        s.setsockopt(socket.IPPROTO_IP, 33, 4)
    """, tmp_path, lwip=True))
    lines = out.split("\n")
    assert lines[0] == "0 0x400 32"
    assert lines[1] == "[False, False, False, False, False, False]"
    assert lines[2] == "('224.0.10.1', 5)"
    assert lines[3] == "False False"
    assert lines[4] == "Warning: lwip.setsockopt() not implemented"


def test_membership_value_must_be_8_bytes_and_4sl_fails(tmp_path):
    out = ok(run_fakes("""
        import socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("224.0.10.1", 50000))
        def join(v):
            return err(lambda: s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, v))
        g = bytes([224, 0, 10, 1])
        seed = struct.pack("4sl", g)  # the seed tutorial's value (one argument short)
        print(len(seed), join(seed))
        print(join(g), join(g + bytes(8)), join(g + bytes(4)))
    """, tmp_path, lwip=True, control={}))
    lines = out.split("\n")
    assert lines[0] == "16 ValueError"  # 'l' is 8 bytes here: a 16-byte value
    assert lines[1] == "ValueError ValueError ok"


def test_socket_and_group_budget(tmp_path):
    out = ok(run_fakes("""
        import socket, network
        nic = network.WIZNET5K()
        nic.active(True)
        def count(make):
            n = 0
            try:
                while n < 20:
                    make()
                    n += 1
            except OSError as e:
                return n, e.errno
        socks = []
        print(count(lambda: socks.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))))
        for s in socks:
            s.close()
        nic.ifconfig(("198.18.0.10", "255.254.0.0", "0.0.0.0", "0.0.0.0"))
        socks = []
        print(count(lambda: socks.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))))
        s = socks[0]
        groups = iter(range(1, 40))
        def join():
            g = next(groups)
            s.setsockopt(0, socket.IP_ADD_MEMBERSHIP, bytes([239, 1, 1, g, 0, 0, 0, 0]))
        print(count(join))
    """, tmp_path, lwip=True))
    lines = out.split("\n")
    assert lines[0] == "(3, 12)"  # DHCP runs after active(True): it holds a PCB
    assert lines[1] == "(4, 12)"  # static: 5 PCBs less mDNS
    assert lines[2] == "(6, 12)"  # 8 IGMP groups less the stack's 2


# -- on the LAN: what the seed code gets wrong --------------------------------------


# Prepended to the scripts run on the LAN: the fake NIC up at the board's address, and
# `joined`, a socket bound to 224.0.10.1:50000 and joined to it, as it should be done.
NIC_UP = """
import socket, network, select, time
nic = network.WIZNET5K(); nic.active(True)
nic.ifconfig(("198.18.0.10", "255.254.0.0", "0.0.0.0", "0.0.0.0"))
def joined():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("224.0.10.1", 50000))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, bytes([224,0,10,1,0,0,0,0]))
    return s
"""

SEED_BIND_ANY = """
    good = joined()
    bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bad.bind(("", 50000))  # the seed-style bind to ''
    p = select.poll(); p.register(good, 1); p.register(bad, 1)
    print("ready")
    got = {"good": 0, "bad": 0}
    end = time.ticks_add(time.ticks_ms(), 3000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        for s, ev in p.poll(200):
            s.recvfrom(1500)
            got["good" if s is good else "bad"] += 1
    print(got["good"], got["bad"])
"""


@pytest.fixture
def pair(lan):
    board = lan.add_host("board", BOARD_IP)
    pc = lan.add_host("pc1", "198.18.0.20")
    return lan, board, pc


def _start_script(host, code, tmp_path, lwip=True):
    import subprocess

    ctl = tmp_path / "control.json"
    ctl.write_text("{}")
    env = dict(__import__("os").environ)
    paths = [mpy.FAKES] + ([mpy.LWIP] if lwip else []) + [mpy.LIB]
    env.update(MICROPYPATH=mpy.micropypath(*paths), TWIN_CONTROL=str(ctl),
               TWIN_IFACE=host.ifname)
    p = host.popen([*mpy.micropython_argv(), "-c", NIC_UP + textwrap.dedent(code)], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


def test_bind_to_empty_host_never_receives_ipv4(pair, tmp_path):
    lan, board, pc = pair
    p = _start_script(board, SEED_BIND_ANY, tmp_path)
    assert pc.send(GROUP, 50000, count=20, interval=0.01, ttl=2) == 20
    out, err = p.communicate(timeout=30)
    assert out.strip() == "20 0", err


def test_readinto_glues_datagrams(pair, tmp_path):
    lan, board, pc = pair
    p = _start_script(board, """
        s = joined()
        print("ready")
        buf = bytearray(8)
        n = s.readinto(buf)
        print(n, bytes(buf))
    """, tmp_path)
    pc.send(GROUP, 50000, count=1, payload=b"abcd", ttl=2)
    pc.send(GROUP, 50000, count=1, payload=b"efgh", ttl=2)
    out, err = p.communicate(timeout=30)
    assert out.strip() == "8 b'abcdefgh'", err  # two datagrams, one buffer: boundaries lost


SEND_FROM_RX = """
    import mcast
    s = mcast.open_rx("224.0.10.1", 50000)
    print("ready")
    try:
        for _ in range(3):
            s.sendto(b"from-rx", mcast.sockaddr("224.0.10.2", 50000))
            time.sleep_ms(100)
        print("sent")
    except OSError as e:
        print("OSError", e.errno)
"""


@pytest.mark.parametrize("lwip", [True, False])
def test_source_address_when_sending_from_the_group_bound_socket(pair, tmp_path, lwip):
    """The seed sends on the socket bound to its group. lwIP's udp_sendto_if
    gives a multicast-bound PCB the interface's address, and so does Linux
    here: the datagram leaves with the board's address on both personalities.
    (Our relay still keeps one transmit socket apart: it serves every route
    and discovery within the board's 5-socket budget.)"""
    lan, board, pc = pair
    rx = pc.receiver("224.0.10.2", 50000)
    p = _start_script(board, SEND_FROM_RX, tmp_path, lwip=lwip)
    out, err = p.communicate(timeout=30)
    got = rx.wait_for(1, timeout=2)
    rx.close()
    assert out.strip() == "sent" and got, err
    assert rx.datagrams[0][1] == BOARD_IP


QUEUE = """
    s = joined()
    print("ready")
    time.sleep(2)  # not reading: the queue fills
    s.settimeout(0)
    n = 0
    try:
        while True:
            s.recvfrom(2000)
            n += 1
    except OSError:
        pass
    print(n)
"""


@pytest.mark.parametrize("size", [64, 1000, 1472])
def test_receive_queue_holds_a_few_datagrams(pair, tmp_path, size):
    """lwIP keeps 4 datagrams per socket; the personality keeps a few."""
    lan, board, pc = pair
    p = _start_script(board, QUEUE, tmp_path)
    pc.send(GROUP, 50000, count=30, payload=b"q" * size, ttl=2)
    out, err = p.communicate(timeout=30)
    n = int(out.strip())
    assert (3 <= n <= 5) if size > 900 else (4 <= n <= 20), (out, err)
