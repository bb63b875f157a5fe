// Shared part of the WIZnet W5100S / W5500 register-level models: the SPI frame (a 3-byte
// header, then data bytes at an auto-incrementing address), per-socket state and their reset
// values, buffer allocation, the socket command engine (OPEN/CLOSE/SEND/RECV), the MACRAW
// receive ring with its 2-byte length headers, the MACRAW MAC filter, interrupt (INTn) level,
// the resets and the test helpers. The chip-specific parts (what the header says, the address
// map, the common register map, how INTn is gated) are in w5100s.mjs and w5500.mjs, and so is
// each chip's data (where its filter bits live, its common reset values, its buffer sizes).
//
// Written from the W5100S/W5500 datasheets and from what the MicroPython v1.28.0 driver
// (extmod/network_wiznet5k.c + lib/wiznet5k @0803fc5, Ethernet/socket.c) actually does.

/** Sn_CR command codes (W5500 datasheet 4.2 Sn_CR; W5100S datasheet Sn_CR). */
export const CMD = Object.freeze({
  OPEN: 0x01, LISTEN: 0x02, CONNECT: 0x04, DISCON: 0x08, CLOSE: 0x10,
  SEND: 0x20, SEND_MAC: 0x21, SEND_KEEP: 0x22, RECV: 0x40,
});
const CMD_NAMES = new Map(Object.entries(CMD).map(([k, v]) => [v, k]));

/** Sn_IR bits (both chips). */
export const SN_IR = Object.freeze({ CON: 0x01, DISCON: 0x02, RECV: 0x04, TIMEOUT: 0x08, SENDOK: 0x10 });
const SN_IR_MASK = 0x1f;

/** Sn_SR values the model produces. */
export const SOCK = Object.freeze({ CLOSED: 0x00, INIT: 0x13, UDP: 0x22, IPRAW: 0x32, MACRAW: 0x42, PPPOE: 0x5f });

/** Sn_MR protocol field P[3:0]. */
export const PROTO = Object.freeze({ CLOSED: 0x0, TCP: 0x1, UDP: 0x2, IPRAW: 0x3, MACRAW: 0x4, PPPOE: 0x5 });

/** Chip-independent MACRAW filter flags (each chip maps its own Sn_MR/Sn_MR2 bits onto these). */
export const FILTER = Object.freeze({ MFEN: 1, BCAST_BLOCK: 2, MCAST_BLOCK: 4, IPV6_BLOCK: 8 });

/** Socket register offsets common to both chips (W5500 datasheet 4.2, W5100S datasheet 4.2). */
export const SREG = Object.freeze({
  MR: 0x00, CR: 0x01, IR: 0x02, SR: 0x03, PORT: 0x04, DHAR: 0x06, DIPR: 0x0c, DPORT: 0x10,
  MSSR: 0x12, TOS: 0x15, TTL: 0x16, RXBUF_SIZE: 0x1e, TXBUF_SIZE: 0x1f,
  TX_FSR: 0x20, TX_RD: 0x22, TX_WR: 0x24, RX_RSR: 0x26, RX_RD: 0x28, RX_WR: 0x2a, IMR: 0x2c, FRAG: 0x2d,
});

/** SPI framing phases shared by both chips: header bytes 0..2, then data (or the frame ignored). */
export const PHASE = Object.freeze({ DATA: 3, IGNORE: 4 });

const ETH_MIN = 14; // a frame must at least carry the Ethernet header
const ETH_MAX = 1514; // MACRAW MTU (W5500 datasheet 4.2 Sn_MSSR table: MACRAW 1514)
const ETHERTYPE_IPV6 = 0x86dd;

/**
 * The MACRAW MAC filter decision for one frame (dest MAC first).
 * flags: FILTER bits; shar: the chip's own MAC (6 bytes, any indexable); policy: 'pass'|'block'
 * for multicast under MFEN. Without MFEN every frame passes (the filter bits only act with MFEN).
 */
export function macFilterPasses(frame, shar, sharOffset, flags, policy) {
  if (!(flags & FILTER.MFEN)) return true;
  if ((flags & FILTER.IPV6_BLOCK) && ((frame[12] << 8) | frame[13]) === ETHERTYPE_IPV6) return false;
  if ((frame[0] & frame[1] & frame[2] & frame[3] & frame[4] & frame[5]) === 0xff) {
    return !(flags & FILTER.BCAST_BLOCK);
  }
  if (frame[0] & 1) {
    if (flags & FILTER.MCAST_BLOCK) return false;
    return policy !== 'block';
  }
  for (let i = 0; i < 6; i++) if (frame[i] !== shar[sharOffset + i]) return false;
  return true;
}

function newStats() {
  return {
    rxFrames: 0, rxDroppedFull: 0, rxDroppedFiltered: 0, rxDroppedClosed: 0, rxDroppedLinkDown: 0,
    rxDroppedInvalid: 0, txFrames: 0, txDroppedLinkDown: 0, commands: {},
  };
}

/**
 * Base class. A chip is constructed with its data (the spec, see below) and provides:
 * header(i, byte) (the SPI header bytes: sets addr, writing, block, fixedLen and returns the
 * next phase), readAt(addr, block)/writeAt(addr, v, block) (its address map), readCommon/
 * writeCommon, intAsserted() and, if it has state beyond its registers, resetOwnState().
 *
 * spec: name, nSockets, txTotal/rxTotal (buffer memory in bytes), bufSizesKB (the valid
 * Sn_TXBUF_SIZE/Sn_RXBUF_SIZE values), versionRegister/version, hasPppoeSocket, commonReset
 * ([address, byte...] rows: the common registers that do not reset to 0) and filterBits
 * ([socket register offset, bit, FILTER flag] rows: where the chip keeps the MACRAW filter).
 */
export class WiznetChip {
  constructor(spec, { link = true } = {}) {
    Object.assign(this, spec);
    const sockets = this.nSockets;
    this.txMem = new Uint8Array(this.txTotal);
    this.rxMem = new Uint8Array(this.rxTotal);
    this.common = new Uint8Array(0x100); // common register block (writes to unlisted addresses kept)
    this.sreg = new Uint8Array(sockets * 0x100); // socket n register block at n << 8
    this.sockIr = new Uint8Array(sockets);
    this.sockSr = new Uint8Array(sockets);
    this.txKB = new Uint8Array(sockets); // configured buffer sizes in KB
    this.rxKB = new Uint8Array(sockets);
    this.txSize = new Int32Array(sockets); // allocated sizes in bytes (0 = none)
    this.rxSize = new Int32Array(sockets);
    this.txBase = new Int32Array(sockets);
    this.rxBase = new Int32Array(sockets);
    this.txRd = new Int32Array(sockets); // chip-owned pointers (16-bit)
    this.rxWr = new Int32Array(sockets);
    this.rxRdLatched = new Int32Array(sockets); // Sn_RX_RD as of the last RECV command
    this.faults = { stuckCommand: false };
    this.stats = newStats();
    this.multicastPolicy = 'pass';
    this.onTransmit = null;
    this.onInterrupt = null;
    this.intn = true; // INTn idles high (active low)
    this.link = !!link;
    this.inReset = false;
    this.selected = false;
    this.resetAll();
    this.resetFraming();
  }

  // ---- pins -------------------------------------------------------------------------------

  /** CS level: active=true while CS is low. Each falling edge starts a new SPI frame. */
  select(active) {
    active = !!active;
    if (this.inReset) { this.selected = false; return; }
    this.selected = active;
    this.resetFraming();
  }

  /**
   * RST pin: asserted=true while RST is low. All registers take their reset values; while
   * held, the chip ignores SPI (exchange() returns 0x00) and INTn is released (high).
   */
  setReset(asserted) {
    asserted = !!asserted;
    if (asserted) {
      this.inReset = true;
      this.selected = false;
      this.resetAll();
      this.resetFraming();
    } else if (this.inReset) {
      this.inReset = false;
      this.resetAll();
      this.resetFraming();
    }
    this.updateInterrupt();
  }

  /** The cable: reflected in the PHY status link bit; frames are dropped both ways while down. */
  setLink(up) {
    this.link = !!up;
  }

  // ---- SPI ----------------------------------------------------------------------------------

  /** A new frame (CS fell, or a fixed-length frame ended): its header comes first. */
  resetFraming() {
    this.phase = 0;
    this.addr = 0;
    this.block = 0; // the W5500's BSB (the W5100S has none)
    this.writing = false;
    this.fixedLen = 0; // data bytes of a fixed-length frame (0: data until CS goes high)
    this.count = 0;
  }

  /** One SPI byte while selected: MOSI in, MISO out (0x00 but for read data bytes). */
  exchange(mosi) {
    if (!this.selected) return 0x00;
    const phase = this.phase;
    if (phase !== PHASE.DATA) {
      if (phase !== PHASE.IGNORE) this.phase = this.header(phase, mosi);
      return 0x00;
    }
    const a = this.addr;
    this.addr = (a + 1) & 0xffff;
    let out = 0x00;
    if (this.writing) this.writeAt(a, mosi, this.block);
    else out = this.readAt(a, this.block);
    if (this.fixedLen && ++this.count === this.fixedLen) this.phase = 0;
    return out;
  }

  // ---- reset ------------------------------------------------------------------------------

  /** Hardware (RST pin) and software (MR.RST) reset: every register to its reset value. */
  resetAll() {
    this.common.fill(0);
    this.sreg.fill(0);
    this.sockIr.fill(0);
    this.sockSr.fill(0);
    this.txRd.fill(0);
    this.rxWr.fill(0);
    this.rxRdLatched.fill(0);
    for (const [a, ...bytes] of this.commonReset) this.common.set(bytes, a);
    for (let n = 0; n < this.nSockets; n++) {
      const b = n << 8;
      this.sreg.fill(0xff, b + SREG.DHAR, b + SREG.DHAR + 6);
      this.sreg[b + SREG.TTL] = 0x80;
      this.sreg[b + SREG.IMR] = 0xff;
      this.sreg[b + SREG.FRAG] = 0x40; // 0x4000
      this.txKB[n] = 2; // 2 KB each (W5100S RMSR/TMSR 0x55)
      this.rxKB[n] = 2;
    }
    this.resetOwnState();
    this.allocateBuffers();
  }

  resetOwnState() {}

  validBufKB(kb) {
    return this.bufSizesKB.includes(kb);
  }

  /** Lay the socket buffers out in socket order; a socket that no longer fits gets none. */
  allocateBuffers() {
    let tx = 0;
    let rx = 0;
    for (let n = 0; n < this.nSockets; n++) {
      let t = this.validBufKB(this.txKB[n]) ? this.txKB[n] * 1024 : 0;
      let r = this.validBufKB(this.rxKB[n]) ? this.rxKB[n] * 1024 : 0;
      if (tx + t > this.txTotal) t = 0;
      if (rx + r > this.rxTotal) r = 0;
      this.txBase[n] = tx; this.txSize[n] = t; tx += t;
      this.rxBase[n] = rx; this.rxSize[n] = r; rx += r;
    }
  }

  // ---- socket registers (same layout 0x00-0x2C on both chips) -----------------------------

  sockWord(n, off) {
    const b = (n << 8) + off;
    return (this.sreg[b] << 8) | this.sreg[b + 1];
  }

  setSockWord(n, off, v) {
    const b = (n << 8) + off;
    this.sreg[b] = (v >> 8) & 0xff;
    this.sreg[b + 1] = v & 0xff;
  }

  txUsed(n) {
    return (this.sockWord(n, SREG.TX_WR) - this.txRd[n]) & 0xffff;
  }

  rxUsed(n) {
    return (this.rxWr[n] - this.rxRdLatched[n]) & 0xffff;
  }

  readSock(n, off) {
    switch (off) {
      case SREG.IR: return this.sockIr[n];
      case SREG.SR: return this.sockSr[n];
      case SREG.RXBUF_SIZE: return this.rxKB[n];
      case SREG.TXBUF_SIZE: return this.txKB[n];
      case SREG.TX_FSR: case SREG.TX_FSR + 1: {
        // Free size = buffer size minus bytes between Sn_TX_RD and Sn_TX_WR (W5500 4.2 Sn_TX_FSR).
        const size = this.txSize[n];
        let free = size - this.txUsed(n);
        if (free < 0) free = 0;
        return off === SREG.TX_FSR ? free >> 8 : free & 0xff;
      }
      case SREG.TX_RD: return this.txRd[n] >> 8;
      case SREG.TX_RD + 1: return this.txRd[n] & 0xff;
      case SREG.RX_RSR: case SREG.RX_RSR + 1: {
        // Received size = Sn_RX_WR - Sn_RX_RD as released by the last RECV (W5500 4.2 Sn_RX_RSR).
        const used = this.rxUsed(n);
        return off === SREG.RX_RSR ? used >> 8 : used & 0xff;
      }
      case SREG.RX_WR: return this.rxWr[n] >> 8;
      case SREG.RX_WR + 1: return this.rxWr[n] & 0xff;
      default: return this.sreg[(n << 8) + off];
    }
  }

  writeSock(n, off, v) {
    switch (off) {
      case SREG.CR:
        this.countCommand(v);
        if (this.faults.stuckCommand) { this.sreg[(n << 8) + SREG.CR] = v; return; }
        this.sreg[(n << 8) + SREG.CR] = 0;
        this.command(n, v);
        return;
      case SREG.IR: // write 1 to clear
        this.sockIr[n] &= ~v & SN_IR_MASK;
        this.updateInterrupt();
        return;
      case SREG.SR: case SREG.TX_FSR: case SREG.TX_FSR + 1: case SREG.TX_RD: case SREG.TX_RD + 1:
      case SREG.RX_RSR: case SREG.RX_RSR + 1: case SREG.RX_WR: case SREG.RX_WR + 1:
        return; // read-only
      case SREG.RXBUF_SIZE:
        this.rxKB[n] = v; this.allocateBuffers();
        return;
      case SREG.TXBUF_SIZE:
        this.txKB[n] = v; this.allocateBuffers();
        return;
      case SREG.IMR:
        this.sreg[(n << 8) + off] = v;
        this.updateInterrupt();
        return;
      default:
        this.sreg[(n << 8) + off] = v;
    }
  }

  countCommand(v) {
    const name = CMD_NAMES.get(v) || `CMD_0x${v.toString(16).padStart(2, '0')}`;
    const c = this.stats.commands;
    c[name] = (c[name] || 0) + 1;
  }

  // ---- socket commands ----------------------------------------------------------------------

  command(n, cmd) {
    switch (cmd) {
      case CMD.OPEN: this.open(n); break;
      case CMD.CLOSE: this.sockSr[n] = SOCK.CLOSED; break;
      case CMD.SEND: this.send(n); break;
      case CMD.RECV: this.rxRdLatched[n] = this.sockWord(n, SREG.RX_RD); break;
      default: break; // LISTEN/CONNECT/DISCON/SEND_MAC/SEND_KEEP/...: accepted, no effect
    }
  }

  open(n) {
    const proto = this.sreg[n << 8] & 0x0f;
    this.txRd[n] = 0;
    this.rxWr[n] = 0;
    this.rxRdLatched[n] = 0;
    this.setSockWord(n, SREG.TX_WR, 0);
    this.setSockWord(n, SREG.RX_RD, 0);
    let sr = SOCK.CLOSED;
    switch (proto) {
      case PROTO.TCP: sr = SOCK.INIT; break;
      case PROTO.UDP: sr = SOCK.UDP; break;
      case PROTO.IPRAW: sr = SOCK.IPRAW; break;
      case PROTO.MACRAW: if (n === 0) sr = SOCK.MACRAW; break; // MACRAW is socket 0 only
      case PROTO.PPPOE: if (n === 0 && this.hasPppoeSocket) sr = SOCK.PPPOE; break;
      default: break;
    }
    this.sockSr[n] = sr;
  }

  send(n) {
    const sr = this.sockSr[n];
    if (sr !== SOCK.MACRAW && sr !== SOCK.UDP && sr !== SOCK.IPRAW) return;
    const size = this.txSize[n];
    const wr = this.sockWord(n, SREG.TX_WR);
    let len = (wr - this.txRd[n]) & 0xffff;
    if (len > size) len = size;
    let frame = null;
    if (sr === SOCK.MACRAW && size) {
      frame = new Uint8Array(len);
      const mask = size - 1;
      const base = this.txBase[n];
      const start = this.txRd[n] & mask;
      const first = Math.min(len, size - start);
      frame.set(this.txMem.subarray(base + start, base + start + first), 0);
      if (first < len) frame.set(this.txMem.subarray(base, base + len - first), first);
    }
    this.txRd[n] = wr;
    this.sockIr[n] |= SN_IR.SENDOK;
    this.updateInterrupt();
    if (!frame) return; // UDP/IPRAW: no data path in this model, the data is consumed
    if (!this.link) { this.stats.txDroppedLinkDown++; return; }
    this.stats.txFrames++;
    if (this.onTransmit) this.onTransmit(frame);
  }

  // ---- the wire -----------------------------------------------------------------------------

  /** A frame from the wire (dest MAC first, no FCS). Returns whether socket 0 stored it. */
  receiveFrame(frame) {
    const st = this.stats;
    if (!this.link) { st.rxDroppedLinkDown++; return false; }
    if (this.inReset || this.sockSr[0] !== SOCK.MACRAW) { st.rxDroppedClosed++; return false; }
    const len = frame.length;
    if (len < ETH_MIN || len > ETH_MAX) { st.rxDroppedInvalid++; return false; }
    if (!macFilterPasses(frame, this.common, 0x09, this.filterFlags(0), this.multicastPolicy)) {
      st.rxDroppedFiltered++;
      return false;
    }
    const size = this.rxSize[0];
    const need = len + 2;
    if (size - this.rxUsed(0) < need) { st.rxDroppedFull++; return false; }
    const mask = size - 1;
    const base = this.rxBase[0];
    const mem = this.rxMem;
    let p = this.rxWr[0];
    mem[base + (p & mask)] = need >> 8;
    mem[base + ((p + 1) & mask)] = need & 0xff;
    const start = (p + 2) & mask;
    const first = Math.min(len, size - start);
    mem.set(first === len ? frame : frame.subarray(0, first), base + start);
    if (first < len) mem.set(frame.subarray(first), base);
    this.rxWr[0] = (p + need) & 0xffff;
    st.rxFrames++;
    this.sockIr[0] |= SN_IR.RECV;
    this.updateInterrupt();
    return true;
  }

  // ---- interrupts ---------------------------------------------------------------------------

  /** Bit n set when socket n has an Sn_IR bit that its Sn_IMR lets through. */
  socketIntBits() {
    let bits = 0;
    for (let n = 0; n < this.nSockets; n++) {
      if (this.sockIr[n] & this.sreg[(n << 8) + SREG.IMR]) bits |= 1 << n;
    }
    return bits;
  }

  /** Recompute INTn (a level following the flags) and report a change. */
  updateInterrupt() {
    const level = this.inReset ? true : !this.intAsserted();
    if (level !== this.intn) {
      this.intn = level;
      if (this.onInterrupt) this.onInterrupt(level);
    }
  }

  // ---- software reset from MR ---------------------------------------------------------------

  /** MR written: RST (bit 7) resets every register and self-clears, unless a command is stuck. */
  writeMR(v) {
    if (v & 0x80) {
      if (this.faults.stuckCommand) { this.common[0] = v; return; }
      this.resetAll();
      this.updateInterrupt();
      return;
    }
    this.common[0] = v;
  }

  // ---- socket specifics ---------------------------------------------------------------------

  /** Socket n's MACRAW filter as FILTER flags, from the chip's own bits (spec.filterBits). */
  filterFlags(n) {
    let f = 0;
    for (const [off, bit, flag] of this.filterBits) if (this.sreg[(n << 8) + off] & bit) f |= flag;
    return f;
  }

  // ---- test helpers -------------------------------------------------------------------------

  /** The byte an SPI read at addr would return; block is the W5500's BSB (default 0). */
  reg(addr, block = 0) { return this.readAt(addr & 0xffff, block); }

  /** An SPI write of one byte at addr (in block), with its side effects (commands, W1C, resets). */
  setReg(addr, value, block = 0) { this.writeAt(addr & 0xffff, value & 0xff, block); }
}
