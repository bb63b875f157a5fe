// WIZnet W5100S register-level model (SPI mode). See README.md for what is and is not modelled.
//
// SPI frame (what lib/wiznet5k W5100S/w5100s.c WIZCHIP_READ/WRITE/_BUF send, all under one CS):
//   byte 0: opcode 0xF0 = write, 0x0F = read (any other opcode: the rest of the frame is ignored)
//   byte 1: address[15:8], byte 2: address[7:0]
//   byte 3..: data; the address auto-increments by one per data byte for as long as CS stays low
//             (the driver's _BUF functions send the 3-byte header once, then len data bytes).
// MISO: the register byte during read data bytes; 0x00 during the header and write data bytes.
//
// Address map (W5100S datasheet ch. 3 memory map / lib w5100s.h):
//   0x0000-0x00FF common registers, 0x0400+n*0x100 socket n registers (n = 0..3),
//   0x4000-0x5FFF TX memory (8 KB), 0x6000-0x7FFF RX memory (8 KB), split per socket in socket
//   order by TMSR/RMSR (2 bits per socket: 1/2/4/8 KB) or Sn_TXBUF_SIZE/Sn_RXBUF_SIZE (KB).
import { WiznetChip, FILTER, PHASE, SREG } from './wiznet.mjs';

/** Common register addresses (lib w5100s.h; W5100S datasheet 4.1). */
export const W5100S_REG = Object.freeze({
  MR: 0x00, GAR: 0x01, SUBR: 0x05, SHAR: 0x09, SIPR: 0x0f, INTPTMR: 0x13, IR: 0x15, IMR: 0x16,
  RTR: 0x17, RCR: 0x19, RMSR: 0x1a, TMSR: 0x1b, IR2: 0x20, IMR2: 0x21, PTIMER: 0x28, PMAGIC: 0x29,
  UIPR: 0x2a, UPORTR: 0x2e, MR2: 0x30, PHAR: 0x32, PSIDR: 0x38, PMRUR: 0x3a,
  PHYSR: 0x3c, PHYSR1: 0x3d, PHYAR: 0x3e, PHYRAR: 0x3f, PHYDIR: 0x40, PHYDOR: 0x42, PHYACR: 0x44,
  PHYDIVR: 0x45, PHYCR0: 0x46, PHYCR1: 0x47, SLCR: 0x4c, SLRTR: 0x4d, SLRCR: 0x4f, SLPIPR: 0x50,
  SLPHAR: 0x54, PINGSEQR: 0x5a, PINGIDR: 0x5c, SLIMR: 0x5e, SLIR: 0x5f,
  CHIPLCKR: 0x70, NETLCKR: 0x71, PHYLCKR: 0x72, VERR: 0x80, TCNTR: 0x82, TCNTCLKR: 0x88,
});
const R = W5100S_REG;

/** Socket-register extras of the W5100S (beyond the shared layout). */
export const W5100S_SREG = Object.freeze({ PROTO: 0x14, MR2: 0x2f, KPALVTR: 0x30, RTR: 0x32, RCR: 0x34 });

export const W5100S_SOCKET_BASE = 0x0400;
export const W5100S_TX_BASE = 0x4000;
export const W5100S_RX_BASE = 0x6000;

const OP_WRITE = 0xf0;
const OP_READ = 0x0f;
const MR2_IEN = 0x40; // MR2 bit 6: INTn pin enable (the driver sets it: setMR2(getMR2() | MR2_G_IEN))
const PHYSR_LNK = 0x01;
const PHYACR_WRITE = 0x01;
const PHYACR_READ = 0x02;
const BMCR_RESET = 0x8000;
const BMCR_DEFAULT = 0x3100; // 100 Mb/s, auto-negotiation enabled, full duplex
const BMSR_ABILITIES = 0x7809; // 100TX FD/HD, 10T FD/HD, auto-negotiation able, extended caps
const BMSR_LINK = 0x0004;
const BMSR_ANEG_DONE = 0x0020;

function kbToCode(kb) {
  switch (kb) { case 2: return 1; case 4: return 2; case 8: return 3; default: return 0; }
}

/** The W5100S's data for the shared model (see WiznetChip). */
const SPEC = Object.freeze({
  name: 'W5100S', nSockets: 4, txTotal: 8192, rxTotal: 8192, bufSizesKB: [0, 1, 2, 4, 8],
  versionRegister: R.VERR, version: 0x51, hasPppoeSocket: true,
  // MR 0x03 (assumed), RTR 0x07D0, RCR 0x08, PTIMER 0x28, PMRUR 0xFFFF, SLRTR 0x07D0
  commonReset: [[R.MR, 0x03], [R.RTR, 0x07, 0xd0], [R.RCR, 0x08], [R.PTIMER, 0x28],
    [R.PMRUR, 0xff, 0xff], [R.SLRTR, 0x07, 0xd0]],
  // MF in Sn_MR bit 6; MBBLK (6), MMBLK (5), IPV6BLK (4) in Sn_MR2
  filterBits: [[SREG.MR, 0x40, FILTER.MFEN], [W5100S_SREG.MR2, 0x40, FILTER.BCAST_BLOCK],
    [W5100S_SREG.MR2, 0x20, FILTER.MCAST_BLOCK], [W5100S_SREG.MR2, 0x10, FILTER.IPV6_BLOCK]],
});

export class W5100S extends WiznetChip {
  constructor(opts = {}) {
    super(SPEC, opts);
  }

  /** The reset of what is not a register byte: the tick counter and the PHY's registers. */
  resetOwnState() {
    this.tcnt = 0;
    this.mii = new Uint16Array(32);
    this.mii[0] = BMCR_DEFAULT;
    this.phyDor = 0;
  }

  // ---- SPI ----------------------------------------------------------------------------------

  /** Header byte i: the opcode (any other: the rest of the frame is ignored), address hi, lo. */
  header(i, b) {
    switch (i) {
      case 0:
        this.writing = b === OP_WRITE;
        return b === OP_WRITE || b === OP_READ ? 1 : PHASE.IGNORE;
      case 1: this.addr = b << 8; return 2;
      default: this.addr |= b; return PHASE.DATA;
    }
  }

  readAt(a) {
    if (a >= W5100S_TX_BASE) {
      if (a < W5100S_RX_BASE) return this.txMem[a - W5100S_TX_BASE];
      if (a < 0x8000) return this.rxMem[a - W5100S_RX_BASE];
      return 0;
    }
    if (a < 0x100) return this.readCommon(a);
    if (a >= W5100S_SOCKET_BASE && a < 0x0800) return this.readSock((a >> 8) - 4, a & 0xff);
    return 0;
  }

  writeAt(a, v) {
    if (a >= W5100S_TX_BASE) {
      if (a < W5100S_RX_BASE) this.txMem[a - W5100S_TX_BASE] = v;
      else if (a < 0x8000) this.rxMem[a - W5100S_RX_BASE] = v;
      return;
    }
    if (a < 0x100) this.writeCommon(a, v);
    else if (a >= W5100S_SOCKET_BASE && a < 0x0800) this.writeSock((a >> 8) - 4, a & 0xff, v);
  }

  // ---- common registers ---------------------------------------------------------------------

  readIR() {
    return (this.common[R.IR] & 0xe0) | this.socketIntBits();
  }

  readCommon(a) {
    switch (a) {
      case R.IR: return this.readIR();
      case R.RMSR: return this.sizeCodes(this.rxKB);
      case R.TMSR: return this.sizeCodes(this.txKB);
      case R.PHYSR: return this.link ? PHYSR_LNK : 0x00;
      case R.PHYSR1: return 0x00;
      case R.PHYDOR: return this.phyDor >> 8;
      case R.PHYDOR + 1: return this.phyDor & 0xff;
      case R.PHYACR: return 0x00; // MDIO accesses complete at once
      case R.VERR: return this.version;
      case R.TCNTR: return (this.tcnt >> 8) & 0xff;
      case R.TCNTR + 1: {
        // 100 us tick counter: no clock here, so every full read moves it one tick on
        // (lets the driver's wiz_delay_ms() busy-wait finish).
        const v = this.tcnt & 0xff;
        this.tcnt = (this.tcnt + 1) & 0xffff;
        return v;
      }
      default: return this.common[a];
    }
  }

  writeCommon(a, v) {
    const c = this.common;
    switch (a) {
      case R.MR: this.writeMR(v); return;
      case R.IR: c[R.IR] &= ~(v & 0xe0); this.updateInterrupt(); return; // socket bits: read-only
      case R.IMR: case R.IMR2: case R.MR2: case R.SLIMR:
        c[a] = v; this.updateInterrupt(); return;
      case R.IR2: case R.SLIR: c[a] &= ~v; this.updateInterrupt(); return;
      case R.RMSR: this.setSizeCodes(this.rxKB, v); return;
      case R.TMSR: this.setSizeCodes(this.txKB, v); return;
      case R.PHYACR: this.mdio(v); return;
      case R.TCNTCLKR: this.tcnt = 0; return;
      case R.PHYSR: case R.PHYSR1: case R.VERR: case R.TCNTR: case R.TCNTR + 1:
      case R.PHYDOR: case R.PHYDOR + 1:
        return; // read-only
      default: c[a] = v;
    }
  }

  sizeCodes(kb) {
    let v = 0;
    for (let n = 0; n < 4; n++) v |= kbToCode(kb[n]) << (2 * n);
    return v;
  }

  setSizeCodes(kb, v) {
    for (let n = 0; n < 4; n++) kb[n] = 1 << ((v >> (2 * n)) & 3);
    this.allocateBuffers();
  }

  /** PHY register access through PHYRAR/PHYDIR/PHYACR/PHYDOR (lib wiz_mdio_read/write). */
  mdio(cmd) {
    const reg = this.common[R.PHYRAR] & 0x1f;
    if (cmd === PHYACR_WRITE) {
      let v = (this.common[R.PHYDIR] << 8) | this.common[R.PHYDIR + 1];
      if (reg === 0 && (v & BMCR_RESET)) v = BMCR_DEFAULT; // PHY reset self-clears
      if (reg !== 1) this.mii[reg] = v;
    } else if (cmd === PHYACR_READ) {
      if (reg === 1) {
        this.phyDor = BMSR_ABILITIES | (this.link ? BMSR_LINK | BMSR_ANEG_DONE : 0);
      } else {
        this.phyDor = this.mii[reg];
      }
    }
  }

  // ---- interrupts ---------------------------------------------------------------------------

  /** INTn low when MR2.IEN and any unmasked IR/IR2/SLIR bit (IR socket bits from Sn_IR & Sn_IMR). */
  intAsserted() {
    const c = this.common;
    if (!(c[R.MR2] & MR2_IEN)) return false;
    return ((this.readIR() & c[R.IMR]) | (c[R.IR2] & c[R.IMR2]) | (c[R.SLIR] & c[R.SLIMR])) !== 0;
  }
}
