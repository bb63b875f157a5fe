"""The board model on paper: per-datagram time on an RP2040 + W5100S from the
measured interpreter work, the SPI clock and the driver's register traffic.

Every constant is here with where it comes from; docs/bench.md prints them."""

from __future__ import annotations

CPU_HZ = 133_000_000  # RP2040 Cortex-M0+ (rated 133 MHz; MicroPython's rp2 default is 125 MHz)

# Cortex-M0+ cycles per x86-64 instruction of the same MicroPython C code (reasoned, not
# measured): ARMv6-M Thumb needs ~1.3-1.5x the instructions of x86-64 for interpreter code
# (16-bit encodings, 8 low registers, 2-operand ALU ops, no memory operands, short
# immediates); the M0+ takes ~1.5-2 cycles per instruction on such code (loads, stores and
# taken branches are 2 cycles, the code runs from XIP flash behind a 16 KB cache). Central
# value 3, range 2-4.
CYCLES_PER_X86 = 3.0
CYCLES_PER_X86_RANGE = (2.0, 4.0)

# lwIP's own work per datagram on the board (not in the host count, where the kernel does
# it): RX ethernet_input -> ip4_input -> igmp/udp_input -> pbuf queue, TX udp_sendto ->
# ip4_output -> etharp_output -> linkoutput with pbuf_copy_partial. ~3,000 cycles each way
# (reasoned).
LWIP_CYCLES = 6_000

ETH_UDP_OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers (no FCS through MACRAW)
SPI_CMD = 3  # W5100S SPI frame: opcode (0x0F read / 0xF0 write) + 16-bit address, then data
REG_BYTES = 4  # one register byte = one 4-byte SPI frame (ioLibrary WIZCHIP_READ/WRITE)
# Single-register accesses per forwarded datagram in MACRAW mode (ioLibrary socket.c +
# w5100s.c as used by MicroPython's network_wiznet5k.c): RX ~30 (Sn_RX_RSR read twice in
# both the poll and recvfrom, 4 reads each; Sn_RX_RD, RxMAX/MASK, Sn_CR RECV + wait, for the
# 2-byte MACRAW header and again for the frame), TX ~17 (Sn_TX_FSR 4, Sn_TX_WR, TxMAX/MASK,
# Sn_CR SEND + wait, Sn_IR SEND_OK poll + clear), interrupt acknowledge ~3.
REG_ACCESSES = 50
# CPU time per register access besides the bits: chip select, the machine.SPI call path,
# FIFO waits (assumed ~2 us at 133 MHz).
REG_SW_S = 2e-6
ETH_WIRE_BPS = 100_000_000  # the chip sends at 100 Mbit/s; the driver polls Sn_IR until SEND_OK
ETH_WIRE_EXTRA = 8 + 12 + 4  # preamble, inter-frame gap, FCS

POLL_MS = 64  # without INTN the driver pulls frames every 64 ms (LWIP_TICK_RATE_MS)
QUEUE = 4  # LWIP_INCOMING_PACKET_QUEUE_LEN: datagrams a UDP socket holds

# The seed prints two lines per datagram to USB CDC: "Received: b'...' from (...)" (the
# payload's repr: ~1.2x a printable payload) and "Data sent.". Assumed ~1 MB/s to a host
# that reads.
USB_BPS = 1_000_000


def frame_bytes(payload: int) -> int:
    return payload + ETH_UDP_OVERHEAD


def spi_seconds(payload: int, spi_hz: float) -> dict:
    """SPI + driver time for one datagram in (frame read) and out (frame write)."""
    frame = frame_bytes(payload)
    rx = frame + 2 + 2 * SPI_CMD  # 2-byte MACRAW length header and the frame: two bursts
    tx = frame + SPI_CMD
    regs = REG_ACCESSES * REG_BYTES
    bus = rx + tx + regs
    wire = (frame + ETH_WIRE_EXTRA) * 8 / ETH_WIRE_BPS
    return {
        "bus_bytes": bus,
        "bus_s": bus * 8 / spi_hz,
        "reg_sw_s": REG_ACCESSES * REG_SW_S,
        "wire_wait_s": wire,
        "total_s": bus * 8 / spi_hz + REG_ACCESSES * REG_SW_S + wire,
    }


def interp_seconds(instructions: float, k: float = CYCLES_PER_X86) -> float:
    return instructions * k / CPU_HZ


def seed_print_bytes(payload: int) -> int:
    return int(payload * 1.2) + len("Received: b'' from ('192.168.11.20', 50000)\n") + len(
        "Data sent.\n"
    )


def model(instr: dict[str, float]) -> dict:
    """instr: measured instructions/datagram for 'seed' and 'ours' (1 route)."""
    cases = []
    for who, spi_hz, intn in (("seed", 2e6, False), ("ours", 20e6, True),
                              ("seed", 20e6, True), ("ours", 2e6, False)):
        for payload in (200, 1472):
            s = spi_seconds(payload, spi_hz)
            interp = interp_seconds(instr[who])
            lo, hi = (interp_seconds(instr[who], k) for k in CYCLES_PER_X86_RANGE)
            lwip = LWIP_CYCLES / CPU_HZ
            usb = seed_print_bytes(payload) / USB_BPS if who == "seed" else 0.0
            per = interp + lwip + s["total_s"] + usb
            per_lo = lo + lwip + s["total_s"] + usb
            per_hi = hi + lwip + s["total_s"] + usb
            cpu_rate = 1.0 / per
            cap = None if intn else QUEUE * 1000.0 / POLL_MS
            rate = min(cpu_rate, cap) if cap else cpu_rate
            cases.append({
                "code": who, "spi_mhz": spi_hz / 1e6, "intn": intn, "payload": payload,
                "interp_ms": interp * 1e3, "lwip_ms": lwip * 1e3, "spi_ms": s["bus_s"] * 1e3,
                "reg_sw_ms": s["reg_sw_s"] * 1e3, "wire_ms": s["wire_wait_s"] * 1e3,
                "usb_ms": usb * 1e3, "per_datagram_ms": per * 1e3,
                "per_datagram_ms_range": (per_lo * 1e3, per_hi * 1e3),
                "cpu_bound_pps": cpu_rate, "poll_cap_pps": cap, "expected_pps": rate,
                "expected_pps_range": tuple(
                    min(1.0 / p, cap) if cap else 1.0 / p for p in (per_hi, per_lo)),
            })
    return {"cases": cases}
