// WIZnet W5500 register-level model. See README.md for what is and is not modelled.
//
// SPI frame (W5500 datasheet 2.2, what lib/wiznet5k W5500/w5500.c sends):
//   byte 0: offset address[15:8], byte 1: offset address[7:0]
//   byte 2: control: BSB[4:0] (bits 7:3) block select, RWB (bit 2) 1 = write, OM[1:0] (bits 1:0)
//           00 = VDM (variable length: data until CS goes high; the driver always uses this),
//           01/10/11 = FDM with 1/2/4 data bytes, after which the next frame starts (CS may stay low)
//   byte 3..: data; the offset auto-increments by one per byte (16-bit, wrapping).
//   BSB: 0 = common registers, 1+4n = socket n registers, 2+4n = socket n TX buffer,
//        3+4n = socket n RX buffer (n = 0..7); other values are reserved (reads 0, writes dropped).
//   TX/RX buffer offsets are taken modulo the socket's buffer size (the driver addresses the
//   buffer with the raw 16-bit Sn_TX_WR / Sn_RX_RD and lets the chip wrap; w5500.c wiz_send_data).
// MISO: the register/buffer byte during read data bytes; 0x00 during address/control and writes.
import { WiznetChip, FILTER, PHASE, SREG } from './wiznet.mjs';

/** Common register offsets (lib w5500.h; W5500 datasheet 4.1). */
export const W5500_REG = Object.freeze({
  MR: 0x00, GAR: 0x01, SUBR: 0x05, SHAR: 0x09, SIPR: 0x0f, INTLEVEL: 0x13, IR: 0x15, IMR: 0x16,
  SIR: 0x17, SIMR: 0x18, RTR: 0x19, RCR: 0x1b, PTIMER: 0x1c, PMAGIC: 0x1d, PHAR: 0x1e, PSID: 0x24,
  PMRU: 0x26, UIPR: 0x28, UPORTR: 0x2c, PHYCFGR: 0x2e, VERSIONR: 0x39,
});
const R = W5500_REG;

/** Socket-register extra of the W5500 (beyond the shared layout). */
export const W5500_SREG = Object.freeze({ KPALVTR: 0x2f });

/** Block select values. */
export const BSB = Object.freeze({
  COMMON: 0,
  sreg: (n) => 1 + 4 * n,
  tx: (n) => 2 + 4 * n,
  rx: (n) => 3 + 4 * n,
});

const RWB_WRITE = 0x04;
const PHYCFGR_DEFAULT = 0xb8; // RST=1, OPMD=0, OPMDC=111 (all capable, auto-negotiation)
const PHYCFGR_UP = 0x07; // DPX full, SPD 100, LNK up

// decoded block kinds
const K_COMMON = 0;
const K_SREG = 1;
const K_TX = 2;
const K_RX = 3;
const K_RESERVED = 4;

/** What a BSB value selects: K_COMMON, or K_SREG/K_TX/K_RX of socket bsb >> 2, or K_RESERVED. */
function blockKind(bsb) {
  if (bsb === 0) return K_COMMON;
  const t = bsb & 3;
  return t === 0 ? K_RESERVED : t; // 1 sreg, 2 tx, 3 rx
}

/** The W5500's data for the shared model (see WiznetChip). */
const SPEC = Object.freeze({
  name: 'W5500', nSockets: 8, txTotal: 16384, rxTotal: 16384, bufSizesKB: [0, 1, 2, 4, 8, 16],
  versionRegister: R.VERSIONR, version: 0x04, hasPppoeSocket: false,
  // RTR 0x07D0, RCR 0x08, PTIMER 0x28, PMRU 0xFFFF, PHYCFGR (datasheet 4.1)
  commonReset: [[R.RTR, 0x07, 0xd0], [R.RCR, 0x08], [R.PTIMER, 0x28], [R.PMRU, 0xff, 0xff],
    [R.PHYCFGR, PHYCFGR_DEFAULT]],
  // all in Sn_MR: MFEN (7), BCASTB (6), MMB (5), MIP6B (4)
  filterBits: [[SREG.MR, 0x80, FILTER.MFEN], [SREG.MR, 0x40, FILTER.BCAST_BLOCK],
    [SREG.MR, 0x20, FILTER.MCAST_BLOCK], [SREG.MR, 0x10, FILTER.IPV6_BLOCK]],
});

export class W5500 extends WiznetChip {
  constructor(opts = {}) {
    super(SPEC, opts);
  }

  // ---- SPI ----------------------------------------------------------------------------------

  /** Header byte i: offset hi, offset lo, control (BSB, RWB, OM: 00 VDM, 01/10/11 FDM 1/2/4). */
  header(i, b) {
    switch (i) {
      case 0: this.addr = b << 8; return 1;
      case 1: this.addr |= b; return 2;
      default: {
        this.block = b >> 3;
        this.writing = (b & RWB_WRITE) !== 0;
        const om = b & 3;
        this.fixedLen = om === 0 ? 0 : om === 3 ? 4 : om;
        this.count = 0;
        return PHASE.DATA;
      }
    }
  }

  readAt(a, bsb) {
    const n = bsb >> 2;
    switch (blockKind(bsb)) {
      case K_TX: {
        const size = this.txSize[n];
        return size ? this.txMem[this.txBase[n] + (a & (size - 1))] : 0;
      }
      case K_RX: {
        const size = this.rxSize[n];
        return size ? this.rxMem[this.rxBase[n] + (a & (size - 1))] : 0;
      }
      case K_SREG: return a < 0x100 ? this.readSock(n, a) : 0;
      case K_COMMON: return a < 0x100 ? this.readCommon(a) : 0;
      default: return 0;
    }
  }

  writeAt(a, v, bsb) {
    const n = bsb >> 2;
    switch (blockKind(bsb)) {
      case K_TX: {
        const size = this.txSize[n];
        if (size) this.txMem[this.txBase[n] + (a & (size - 1))] = v;
        return;
      }
      case K_RX: {
        const size = this.rxSize[n];
        if (size) this.rxMem[this.rxBase[n] + (a & (size - 1))] = v;
        return;
      }
      case K_SREG: if (a < 0x100) this.writeSock(n, a, v); return;
      case K_COMMON: if (a < 0x100) this.writeCommon(a, v); return;
      default: return;
    }
  }

  // ---- common registers ---------------------------------------------------------------------

  readCommon(a) {
    switch (a) {
      case R.IR: return this.common[R.IR] & 0xf0;
      case R.SIR: return this.socketIntBits();
      case R.PHYCFGR: return (this.common[R.PHYCFGR] & 0xf8) | (this.link ? PHYCFGR_UP : 0);
      case R.VERSIONR: return this.version;
      default: return this.common[a];
    }
  }

  writeCommon(a, v) {
    const c = this.common;
    switch (a) {
      case R.MR: this.writeMR(v); return;
      case R.IR: c[R.IR] &= ~(v & 0xf0); this.updateInterrupt(); return; // write 1 to clear
      case R.IMR: case R.SIMR: c[a] = v; this.updateInterrupt(); return;
      case R.SIR: case R.VERSIONR: return; // read-only
      case R.PHYCFGR: c[a] = v & 0xf8; return; // DPX/SPD/LNK are status bits
      default: c[a] = v;
    }
  }

  // ---- interrupts ---------------------------------------------------------------------------

  /** INTn low when (IR & IMR) or (SIR & SIMR); SIR bit n = Sn_IR & Sn_IMR != 0. */
  intAsserted() {
    const c = this.common;
    return ((c[R.IR] & c[R.IMR] & 0xf0) | (this.socketIntBits() & c[R.SIMR])) !== 0;
  }
}
