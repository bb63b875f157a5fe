// Test helpers: drive a chip model only through its pins (select/exchange), framing SPI the way
// lib/wiznet5k's WIZCHIP_READ/WRITE/_BUF do for each chip, plus a per-chip adapter so the
// behavioural tests run unchanged against both models.
import { W5100S } from '../w5100s.mjs';
import { W5500 } from '../w5500.mjs';

/**
 * One SPI frame per access, all under one CS, as the driver's burst functions send them: the
 * chip's 3-byte header (header(addr, write, bsb) of each bus below), then the data.
 */
class SpiBus {
  constructor(chip) { this.chip = chip; this.frames = 0; }

  frame(bytes) {
    const c = this.chip;
    const out = new Uint8Array(bytes.length);
    c.select(true);
    for (let i = 0; i < bytes.length; i++) out[i] = c.exchange(bytes[i]);
    c.select(false);
    this.frames++;
    return out;
  }

  readBuf(addr, len, bsb = 0) {
    const f = new Uint8Array(3 + len);
    f.set(this.header(addr, false, bsb));
    return this.frame(f).subarray(3);
  }

  writeBuf(addr, data, bsb = 0) {
    const f = new Uint8Array(3 + data.length);
    f.set(this.header(addr, true, bsb));
    f.set(data, 3);
    this.frame(f);
  }

  read(addr, bsb = 0) { return this.readBuf(addr, 1, bsb)[0]; }
  write(addr, v, bsb = 0) { this.writeBuf(addr, [v], bsb); }
}

/** W5100S SPI: [0xF0|0x0F, addr hi, addr lo, data...] under one CS (w5100s.c burst path). */
export class W5100SBus extends SpiBus {
  header(addr, write) { return [write ? 0xf0 : 0x0f, addr >> 8, addr & 0xff]; }
}

/**
 * W5500 SPI: [offset hi, offset lo, BSB<<3 | RWB<<2 | OM, data...]. OM is always VDM (0),
 * which is what the driver uses; FDM frames are built by the FDM tests themselves.
 */
export class W5500Bus extends SpiBus {
  header(off, write, bsb) { return [off >> 8, off & 0xff, (bsb << 3) | (write ? 0x04 : 0)]; }
}

/** Read a 16-bit size/pointer register until two reads agree (datasheet rule, as the driver does). */
function stable16(read) {
  for (;;) {
    const a = (read(0) << 8) | read(1);
    const b = (read(0) << 8) | read(1);
    if (a === b) return a;
  }
}

/**
 * Chip-neutral access used by the behavioural tests: common registers at block 0, socket
 * registers where sockAt(n, off) -> [address, block] of each adapter puts them.
 */
class Adapter {
  constructor(chip, bus, { name, VERSION, VERSION_VALUE }) {
    this.chip = chip;
    this.bus = bus;
    this.name = name;
    this.SHAR = 0x09;
    this.MR = 0x00;
    this.IR = 0x15;
    this.VERSION = VERSION;
    this.VERSION_VALUE = VERSION_VALUE;
  }

  readCommon(off) { return this.bus.read(off); }
  writeCommon(off, v) { this.bus.write(off, v); }
  readCommonBuf(off, len) { return this.bus.readBuf(off, len); }
  writeCommonBuf(off, data) { this.bus.writeBuf(off, data); }
  readSock(n, off) { const [a, bsb] = this.sockAt(n, off); return this.bus.read(a, bsb); }
  writeSock(n, off, v) { const [a, bsb] = this.sockAt(n, off); this.bus.write(a, v, bsb); }
  writeSockBuf(n, off, data) {
    const [a, bsb] = this.sockAt(n, off);
    this.bus.writeBuf(a, data, bsb);
  }
  readSock16(n, off) { return stable16((i) => this.readSock(n, off + i)); }
  writeSock16(n, off, v) { this.writeSock(n, off, v >> 8); this.writeSock(n, off + 1, v & 0xff); }
}

export class W5100SAdapter extends Adapter {
  constructor(opts = {}) {
    const chip = new W5100S(opts);
    super(chip, new W5100SBus(chip), { name: 'W5100S', VERSION: 0x80, VERSION_VALUE: 0x51 });
  }

  sockAt(n, off) { return [0x0400 + (n << 8) + off, 0]; }

  /** Socket 0 buffer sizes in KB (socket 0 only; the others get what the chip has left). */
  setSizes(txKB, rxKB) {
    const code = (kb) => ({ 1: 0, 2: 1, 4: 2, 8: 3 })[kb];
    this.writeCommon(0x1b, code(txKB)); // TMSR
    this.writeCommon(0x1a, code(rxKB)); // RMSR
  }

  txMax(n) { return 1024 << ((this.readCommon(0x1b) >> (2 * n)) & 3); }
  rxMax(n) { return 1024 << ((this.readCommon(0x1a) >> (2 * n)) & 3); }

  /** Copy into socket 0's TX ring at pointer ptr, splitting at the end as w5100s.c does. */
  writeTx(n, ptr, data) {
    if (n !== 0) throw new Error('socket 0 only');
    const max = this.txMax(0);
    const off = ptr & (max - 1);
    if (off + data.length > max) {
      const first = max - off;
      this.bus.writeBuf(0x4000 + off, data.subarray(0, first));
      this.bus.writeBuf(0x4000, data.subarray(first));
    } else {
      this.bus.writeBuf(0x4000 + off, data);
    }
  }

  readRx(n, ptr, len) {
    if (n !== 0) throw new Error('socket 0 only');
    const max = this.rxMax(0);
    const off = ptr & (max - 1);
    if (off + len > max) {
      const first = max - off;
      const out = new Uint8Array(len);
      out.set(this.bus.readBuf(0x6000 + off, first), 0);
      out.set(this.bus.readBuf(0x6000, len - first), first);
      return out;
    }
    return Uint8Array.from(this.bus.readBuf(0x6000 + off, len));
  }

  /** MACRAW filter bits: MF in Sn_MR bit 6; MBBLK/MMBLK/IPV6BLK in Sn_MR2 bits 6/5/4. */
  setFilter(n, { mfen = false, bcastb = false, mmb = false, mip6b = false }) {
    const mr = this.readSock(n, 0x00);
    this.writeSock(n, 0x00, (mr & ~0x40) | (mfen ? 0x40 : 0));
    this.writeSock(n, 0x2f, (bcastb ? 0x40 : 0) | (mmb ? 0x20 : 0) | (mip6b ? 0x10 : 0));
  }

  /** Socket 0 interrupt to INTn: IMR S0_INT, Sn_IMR RECV, MR2 IEN (as wiznet5k_init does). */
  enableInterrupts(snImr = 0x04) {
    this.writeCommon(0x16, 0x01);
    this.writeSock(0, 0x2c, snImr);
    this.writeCommon(0x30, this.readCommon(0x30) | 0x40);
  }

  linkBit() { return this.readCommon(0x3c) & 0x01; }
}

export class W5500Adapter extends Adapter {
  constructor(opts = {}) {
    const chip = new W5500(opts);
    super(chip, new W5500Bus(chip), { name: 'W5500', VERSION: 0x39, VERSION_VALUE: 0x04 });
  }

  sockAt(n, off) { return [off, 1 + 4 * n]; }

  setSizes(txKB, rxKB) {
    for (let n = 0; n < 8; n++) {
      this.writeSock(n, 0x1f, n === 0 ? txKB : 0);
      this.writeSock(n, 0x1e, n === 0 ? rxKB : 0);
    }
  }

  txMax(n) { return this.readSock(n, 0x1f) << 10; }
  rxMax(n) { return this.readSock(n, 0x1e) << 10; }

  /** One VDM burst at the raw 16-bit pointer: the chip wraps it (w5500.c wiz_send_data). */
  writeTx(n, ptr, data) { this.bus.writeBuf(ptr & 0xffff, data, 2 + 4 * n); }
  readRx(n, ptr, len) { return Uint8Array.from(this.bus.readBuf(ptr & 0xffff, len, 3 + 4 * n)); }

  /** MACRAW filter bits in Sn_MR: MFEN 7, BCASTB 6, MMB 5, MIP6B 4. */
  setFilter(n, { mfen = false, bcastb = false, mmb = false, mip6b = false }) {
    const mr = this.readSock(n, 0x00) & 0x0f;
    this.writeSock(n, 0x00, mr | (mfen ? 0x80 : 0) | (bcastb ? 0x40 : 0) | (mmb ? 0x20 : 0)
      | (mip6b ? 0x10 : 0));
  }

  /** Socket 0 interrupt to INTn: IMR 0, SIMR S0, Sn_IMR RECV (as wiznet5k_init does). */
  enableInterrupts(snImr = 0x04) {
    this.writeCommon(0x16, 0x00);
    this.writeCommon(0x18, 0x01);
    this.writeSock(0, 0x2c, snImr);
  }

  linkBit() { return this.readCommon(0x2e) & 0x01; }
}

export const ADAPTERS = [W5100SAdapter, W5500Adapter];

// ---- frames ---------------------------------------------------------------------------------

export const OWN_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x12, 0x34, 0x56);
export const OTHER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0xab, 0xcd, 0xef);
export const BCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const IPV4_MCAST_MAC = Uint8Array.of(0x01, 0x00, 0x5e, 0x01, 0x02, 0x03);
export const IPV6_MCAST_MAC = Uint8Array.of(0x33, 0x33, 0x00, 0x00, 0x00, 0x01);

/** An Ethernet frame of total length len (>= 14) to dst, ethertype, payload bytes = seed + i. */
export function makeFrame(dst, len = 60, ethertype = 0x0800, seed = 0) {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(OTHER_MAC.map((b, i) => (i === 5 ? 0x99 : b)), 6);
  f[12] = ethertype >> 8; f[13] = ethertype & 0xff;
  for (let i = 14; i < len; i++) f[i] = (seed + i) & 0xff;
  return f;
}

/** Open socket 0 in MACRAW through SPI (close, Sn_MR=MACRAW, OPEN, wait) as socket() does. */
export function openMacraw(ad) {
  ad.writeSock(0, 0x01, 0x10); // CLOSE
  while (ad.readSock(0, 0x01)) { /* wait */ }
  ad.writeSock(0, 0x02, 0xff);
  ad.writeSock(0, 0x00, 0x04); // Sn_MR = MACRAW
  ad.writeSock(0, 0x01, 0x01); // OPEN
  while (ad.readSock(0, 0x01)) { /* wait */ }
  return ad.readSock(0, 0x03);
}

/** Take one MACRAW frame out of socket 0 the way recvfrom() does; null if none. */
export function recvMacraw(ad) {
  const rsr = ad.readSock16(0, 0x26);
  if (rsr === 0) return null;
  let ptr = ad.readSock16(0, 0x28);
  const head = ad.readRx(0, ptr, 2);
  ptr = (ptr + 2) & 0xffff;
  ad.writeSock16(0, 0x28, ptr);
  ad.writeSock(0, 0x01, 0x40); // RECV
  while (ad.readSock(0, 0x01)) { /* wait */ }
  const len = ((head[0] << 8) | head[1]) - 2;
  const data = ad.readRx(0, ptr, len);
  ad.writeSock16(0, 0x28, (ptr + len) & 0xffff);
  ad.writeSock(0, 0x01, 0x40); // RECV
  while (ad.readSock(0, 0x01)) { /* wait */ }
  return data;
}

/** Send one MACRAW frame on socket 0 the way sendto() + wiz_send_data() do. */
export function sendMacraw(ad, frame) {
  while (ad.readSock16(0, 0x20) < frame.length) { /* wait for free space */ }
  const ptr = ad.readSock16(0, 0x24);
  ad.writeTx(0, ptr, frame);
  ad.writeSock16(0, 0x24, (ptr + frame.length) & 0xffff);
  ad.writeSock(0, 0x01, 0x20); // SEND
  while (ad.readSock(0, 0x01)) { /* wait */ }
  let ir;
  do { ir = ad.readSock(0, 0x02); } while (!(ir & 0x10));
  ad.writeSock(0, 0x02, 0x10);
}
