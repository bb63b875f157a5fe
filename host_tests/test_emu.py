"""The emulated board itself: its parts without a firmware image (UF2 reading, the serial
port's DTR, the chip models' own tests), and with one (the official image set by
MCAST_RELAY_FIRMWARE): flash that persists, reset causes, unique id, the chip seen through
machine.SPI, the USB serial's DTR."""

import os
import struct
import subprocess
import time

import pytest

from tools.emu import firmware
from tools.twin import mpy

CHIP_TESTS = sorted((mpy.ROOT / "tools" / "emu" / "chips" / "test").glob("*.test.mjs"))


@pytest.mark.parametrize("path", CHIP_TESTS, ids=[p.name for p in CHIP_TESTS])
def test_chip_model(path):
    """The W5100S/W5500 models against their datasheets (node:test)."""
    r = subprocess.run(["node", "--test", str(path)], capture_output=True, text=True,
                       timeout=120, cwd=mpy.ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout, r.stdout[-2000:]


def _uf2(payload, family=0xE48BFF56, base=0x10000000):
    blocks = [payload[i:i + 256] for i in range(0, len(payload), 256)]
    out = b""
    for n, chunk in enumerate(blocks):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, base + 256 * n, 256, n,
                           len(blocks), family)
        out += head + chunk.ljust(476, b"\0") + struct.pack("<I", 0x0AB16F30)
    return out


def test_identify_reads_version_and_board(tmp_path):
    p = tmp_path / "fw.uf2"
    p.write_bytes(_uf2(b"x" * 300 + b"MicroPython v1.28.0 on 2026-04-06; W5500-EVB-Pico with RP2040"))
    img = firmware.identify(p)
    assert (img.version, img.board, img.chip) == ("1.28.0", "W5500-EVB-Pico", "w5500")


@pytest.mark.parametrize("payload, family, message", [
    (b"MicroPython v1.28.0 Raspberry Pi Pico", 0xE48BFF56, "not for the W5100S-EVB-Pico"),
    (b"no version here W5100S-EVB-Pico", 0xE48BFF56, "no MicroPython version"),
    (b"MicroPython v1.19.1 W5100S-EVB-Pico", 0xE48BFF56, "made for 1.28 and 1.29"),
    (b"MicroPython v1.28.0 W5100S-EVB-Pico", 0xE48BFF57, "no RP2040 blocks"),
])
def test_identify_refuses_other_images_clearly(tmp_path, payload, family, message):
    p = tmp_path / "fw.uf2"
    p.write_bytes(_uf2(payload, family))
    with pytest.raises(firmware.FirmwareError, match=message):
        firmware.identify(p)


def test_identify_refuses_a_file_that_is_no_uf2(tmp_path):
    p = tmp_path / "fw.uf2"
    p.write_bytes(b"\0" * 1000)
    with pytest.raises(firmware.FirmwareError, match="not a UF2 image"):
        firmware.identify(p)
    with pytest.raises(firmware.FirmwareError, match="cannot read"):
        firmware.identify(tmp_path / "missing.uf2")


def test_no_image_configured_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(firmware.ENV, raising=False)
    with pytest.raises(firmware.FirmwareError, match="micropython.org/download"):
        firmware.resolve()


def test_serial_port_dtr_follows_open_and_close():
    from tools.emu.serialport import SerialPort

    events, data = [], []
    port = SerialPort(data.append, events.append)
    try:
        time.sleep(0.2)
        assert not port.is_open
        port.write(b"lost: nobody has the port open")
        fd = os.open(port.path, os.O_RDWR | os.O_NOCTTY)
        end = time.monotonic() + 2
        while not port.is_open and time.monotonic() < end:
            time.sleep(0.02)
        assert events == [True]
        os.write(fd, b"typed")
        port.write(b"printed")
        time.sleep(0.2)
        assert os.read(fd, 100) == b"printed"
        assert b"".join(data) == b"typed"
        os.close(fd)
        end = time.monotonic() + 2
        while port.is_open and time.monotonic() < end:
            time.sleep(0.02)
        assert events == [True, False]
    finally:
        port.close()


# -- with the official image -------------------------------------------------------------------
IMAGES = firmware.configured()


@pytest.fixture(params=[str(p) for p in IMAGES] or [None],
                ids=[p.name for p in IMAGES] or ["no-image"])
def image(request):
    if request.param is None:
        pytest.skip("the emulated board needs the official firmware image: set %s=PATH.uf2"
                    % firmware.ENV)
    return firmware.identify(request.param)


def _repl(board, code, answer, timeout=30):
    end = time.monotonic() + timeout
    while True:
        n = len(board.lines)
        board.send(code + "\r\n")
        try:
            return board.wait_for(answer, min(3, max(0.1, end - time.monotonic())), start=n)
        except TimeoutError:
            if time.monotonic() >= end:
                raise


def test_blank_flash_is_formatted_and_files_persist_across_runs(image, tmp_path):
    from tools.emu.board import EmulatedBoard

    with EmulatedBoard(image, workdir=tmp_path, uid="0123456789abcdef") as b:
        _repl(b, "import os; print('FS', os.statvfs('/')[0])", "FS 4096")
        _repl(b, "f = open('keep.txt', 'w'); f.write('kept'); f.close(); print('WR' + 'OTE')",
              "WROTE")
        _repl(b, "import machine, binascii; print('UID', binascii.hexlify("
                 "machine.unique_id()).decode())", "UID ")
        uid = [x for x in b.lines if x.startswith("UID ")][-1]
    assert uid == "UID 0123456789abcdef"
    with EmulatedBoard(image, workdir=tmp_path) as b:  # the same flash file, a new power-on
        line = _repl(b, "print('GOT', open('keep.txt').read())", "GOT ")
    assert line == "GOT kept"


def _reset_cause(board, timeout=30):
    return _repl(board, "import machine; print('CAUSE', machine.reset_cause())", "CAUSE ",
                 timeout=timeout)


def _reset_by(board, code, boots):
    """Send code that resets the board; wait (30 s at most) until it has booted `boots` times."""
    board.send(code + "\r\n")
    end = time.monotonic() + 30
    while len(board.boots) < boots and time.monotonic() < end:
        time.sleep(0.1)


def test_reset_causes(image, tmp_path):
    from tools.emu.board import EmulatedBoard

    with EmulatedBoard(image, workdir=tmp_path) as b:
        assert _reset_cause(b) == "CAUSE 1"  # PWRON_RESET
        _reset_by(b, "machine.reset()", boots=2)
        # a software reset goes through the watchdog: the firmware reports WDT_RESET (3)
        assert _reset_cause(b, timeout=60) == "CAUSE 3"
        _reset_by(b, "machine.WDT(timeout=500)", boots=3)
        assert _reset_cause(b, timeout=60) == "CAUSE 3"
    assert b.boots == ["power-on", "soft", "watchdog"]


def test_the_chip_answers_its_version_over_machine_spi(image, tmp_path):
    """What issue 14's probe relies on: the model answers the version register on the
    board's SPI0 pins, framed the chip's way (W5100S VERR 0x0080 = 0x51, W5500 VERSIONR
    0x0039 = 0x04)."""
    from tools.emu.board import EmulatedBoard

    if image.chip == "w5100s":
        frame, want = "b'\\x0f\\x00\\x80\\x00'", 0x51
    else:
        frame, want = "b'\\x00\\x39\\x00\\x00'", 0x04
    code = ("from machine import SPI, Pin; import time; rst = Pin(20, Pin.OUT); rst(0); "
            "time.sleep_ms(2); rst(1); time.sleep_ms(200); cs = Pin(17, Pin.OUT, value=1); "
            "spi = SPI(0, 2_000_000, sck=Pin(18), mosi=Pin(19), miso=Pin(16)); "
            "b = bytearray(4); cs(0); spi.write_readinto(%s, b); cs(1); print('VER', b[3])"
            % frame)
    with EmulatedBoard(image, workdir=tmp_path) as b:
        assert _repl(b, code, "VER ") == "VER %d" % want
        b.faults(absent=True)
        assert _repl(b, code, "VER ") == "VER 0"  # MISO floats low: the pad's pull-down


def test_output_before_the_port_is_opened_is_lost_as_on_a_board(image, tmp_path):
    from tools.emu.board import EmulatedBoard

    with EmulatedBoard(image, workdir=tmp_path, console=False) as b:
        time.sleep(3)
        assert b.lines == []  # DTR down: nothing reached anyone
        fd = os.open(b.port.path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"\r\nprint('HELLO', 6 * 7)\r\n")
            got = b""
            end = time.monotonic() + 30
            while b"HELLO 42" not in got and time.monotonic() < end:
                try:
                    got += os.read(fd, 4096)
                except BlockingIOError:
                    time.sleep(0.05)
        finally:
            os.close(fd)
    assert b"HELLO 42" in got


def test_the_clock_never_runs_ahead_of_the_wall_clock(image, tmp_path):
    """On the LAN (realtime timing) the board's virtual time may fall behind the wall clock
    (the emulator is slower than the chip) but never runs ahead of it, idle or busy."""
    from tools.emu.board import EmulatedBoard

    with EmulatedBoard(image, workdir=tmp_path) as b:
        for _ in range(5):
            time.sleep(0.5)
            s = b.status()
            assert s["vns"] <= s["wall_ms"] * 1e6 + 1e6, s  # (1 ms: the two clocks' reading)
        b.send("import time\r\nt = time.ticks_ms()\r\nwhile time.ticks_diff(time.ticks_ms(), t) "
               "< 2000: pass\r\n\r\n")  # busy for 2 s of the board's time
        for _ in range(5):
            time.sleep(0.5)
            s = b.status()
            assert s["vns"] <= s["wall_ms"] * 1e6 + 1e6, s
