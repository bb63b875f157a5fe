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
import { WiznetChip, FILTER } from './wiznet.mjs';

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

// SPI phases
const PH_ADDR_HI = 0;
const PH_ADDR_LO = 1;
const PH_CONTROL = 2;
const PH_DATA = 3;

// decoded block kinds
const K_COMMON = 0;
const K_SREG = 1;
const K_TX = 2;
const K_RX = 3;
const K_RESERVED = 4;

export class W5500 extends WiznetChip {
  constructor(opts = {}) {
    super({
      name: 'W5500', sockets: 8, txTotal: 16384, rxTotal: 16384,
      versionRegister: R.VERSIONR, version: 0x04, link: opts.link ?? true,
    });
  }

  validBufKB(kb) {
    return kb === 0 || kb === 1 || kb === 2 || kb === 4 || kb === 8 || kb === 16;
  }

  resetFraming() {
    this.phase = PH_ADDR_HI;
    this.addr = 0;
    this.kind = K_RESERVED;
    this.sock = 0;
    this.writing = false;
    this.fixedLen = 0; // 0 = VDM
    this.count = 0;
  }

  /** Reset values (W5500 datasheet 4.1 common, 4.2 socket registers). */
  resetRegisters() {
    const c = this.common;
    c[R.RTR] = 0x07; c[R.RTR + 1] = 0xd0;
    c[R.RCR] = 0x08;
    c[R.PTIMER] = 0x28;
    c[R.PMRU] = 0xff; c[R.PMRU + 1] = 0xff;
    c[R.PHYCFGR] = PHYCFGR_DEFAULT;
    for (let n = 0; n < this.nSockets; n++) {
      const b = n << 8;
      this.sreg.fill(0xff, b + 0x06, b + 0x0c); // Sn_DHAR
      this.sreg[b + 0x16] = 0x80; // Sn_TTL
      this.sreg[b + 0x2c] = 0xff; // Sn_IMR
      this.sreg[b + 0x2d] = 0x40; // Sn_FRAG 0x4000
      this.txKB[n] = 2; // Sn_TXBUF_SIZE / Sn_RXBUF_SIZE 2 KB each
      this.rxKB[n] = 2;
    }
  }

  // ---- SPI ----------------------------------------------------------------------------------

  exchange(mosi) {
    if (!this.selected) return 0x00;
    switch (this.phase) {
      case PH_ADDR_HI:
        this.addr = mosi << 8;
        this.phase = PH_ADDR_LO;
        return 0x00;
      case PH_ADDR_LO:
        this.addr |= mosi;
        this.phase = PH_CONTROL;
        return 0x00;
      case PH_CONTROL: {
        const bsb = mosi >> 3;
        if (bsb === 0) { this.kind = K_COMMON; } else {
          const t = bsb & 3;
          this.kind = t === 0 ? K_RESERVED : t; // 1 sreg, 2 tx, 3 rx
          this.sock = bsb >> 2;
        }
        this.writing = (mosi & RWB_WRITE) !== 0;
        const om = mosi & 3;
        this.fixedLen = om === 0 ? 0 : om === 3 ? 4 : om;
        this.count = 0;
        this.phase = PH_DATA;
        return 0x00;
      }
      default: {
        const a = this.addr;
        this.addr = (a + 1) & 0xffff;
        let out = 0x00;
        if (this.writing) this.write(this.kind, this.sock, a, mosi);
        else out = this.read(this.kind, this.sock, a);
        if (this.fixedLen && ++this.count === this.fixedLen) this.phase = PH_ADDR_HI;
        return out;
      }
    }
  }

  read(kind, n, a) {
    switch (kind) {
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

  write(kind, n, a, v) {
    switch (kind) {
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

  // ---- socket specifics -----------------------------------------------------------------------

  /** MACRAW filter bits in Sn_MR: MFEN (7), BCASTB (6), MMB (5), MIP6B (4). */
  filterFlags(n) {
    const mr = this.sreg[n << 8];
    let f = 0;
    if (mr & 0x80) f |= FILTER.MFEN;
    if (mr & 0x40) f |= FILTER.BCAST_BLOCK;
    if (mr & 0x20) f |= FILTER.MCAST_BLOCK;
    if (mr & 0x10) f |= FILTER.IPV6_BLOCK;
    return f;
  }

  /** INTn low when (IR & IMR) or (SIR & SIMR); SIR bit n = Sn_IR & Sn_IMR != 0. */
  intAsserted() {
    const c = this.common;
    return ((c[R.IR] & c[R.IMR] & 0xf0) | (this.socketIntBits() & c[R.SIMR])) !== 0;
  }

  // ---- test helpers ---------------------------------------------------------------------------

  /** The byte an SPI read at (offset, block) would return; block is the BSB value (default 0). */
  reg(addr, block = 0) {
    const [kind, n] = decodeBlock(block);
    return this.read(kind, n, addr & 0xffff);
  }

  /** An SPI write of one byte at (offset, block), with its side effects. */
  setReg(addr, value, block = 0) {
    const [kind, n] = decodeBlock(block);
    this.write(kind, n, addr & 0xffff, value & 0xff);
  }
}

function decodeBlock(bsb) {
  if (bsb === 0) return [K_COMMON, 0];
  const t = bsb & 3;
  return [t === 0 ? K_RESERVED : t, bsb >> 2];
}
