// exchange() throughput for the driver's receive of one 200-byte MACRAW frame:
//   getSn_RX_RSR (2x2 reads), recvfrom: Sn_MR, Sn_RX_RSR again, Sn_SR; header: Sn_RX_RD,
//   (W5100S: RMSR twice for mask/size), 2-byte burst, Sn_RX_RD write, RECV + Sn_CR poll;
//   data: the same with a 200-byte burst; the loop's final RSR (0); IR and Sn_IR clears.
// Run: node tools/emu/chips/bench.mjs [seconds per chip, default 2]
import { W5100S } from './w5100s.mjs';
import { W5500 } from './w5500.mjs';

const FRAME_LEN = 200;
const seconds = Number(process.argv[2] || 2);
const buf = new Uint8Array(4 + 2048);
let spiBytes = 0;

function xfer(chip, n) {
  chip.select(true);
  for (let i = 0; i < n; i++) buf[i] = chip.exchange(buf[i]);
  chip.select(false);
  spiBytes += n;
}

// Header builders: write the 3 header bytes, return the header length.
const W5100S_BUS = {
  hdr(write, addr) { buf[0] = write ? 0xf0 : 0x0f; buf[1] = addr >> 8; buf[2] = addr & 0xff; },
  sock: (off) => [0x0400 + off, 0],
  common: (off) => [off, 0],
  rx: (ptr, chip) => [0x6000 + (ptr & (chip.rxSize[0] - 1)), 0],
};
const W5500_BUS = {
  hdr(write, addr, bsb) { buf[0] = addr >> 8; buf[1] = addr & 0xff; buf[2] = (bsb << 3) | (write ? 4 : 0); },
  sock: (off) => [off, 1],
  common: (off) => [off, 0],
  rx: (ptr) => [ptr, 3],
};

function run(chip, bus) {
  const read = ([addr, bsb]) => { bus.hdr(false, addr, bsb); buf[3] = 0; xfer(chip, 4); return buf[3]; };
  const write = ([addr, bsb], v) => { bus.hdr(true, addr, bsb); buf[3] = v; xfer(chip, 4); };
  const readBuf = ([addr, bsb], len) => { bus.hdr(false, addr, bsb); xfer(chip, 3 + len); };
  const word = (off) => (read(bus.sock(off)) << 8) | read(bus.sock(off + 1));
  const size16 = (off) => { let a; let b = 0; do { a = word(off); if (a) b = word(off); } while (a !== b); return b; };
  const w5100s = chip.name === 'W5100S';
  const recvData = (len) => {
    const ptr = word(0x28);
    if (w5100s) { read(bus.common(0x1a)); read(bus.common(0x1a)); }
    readBuf(bus.rx(ptr, chip), len); // (no ring wrap split needed for the timing)
    write(bus.sock(0x28), ((ptr + len) >> 8) & 0xff);
    write(bus.sock(0x29), (ptr + len) & 0xff);
  };
  const recvCmd = () => { write(bus.sock(0x01), 0x40); while (read(bus.sock(0x01))); };

  // bring-up: socket 0 MACRAW, big buffers, interrupts on
  if (w5100s) { write(bus.common(0x1b), 0x03); write(bus.common(0x1a), 0x03); } else {
    for (let n = 0; n < 8; n++) {
      write([0x1e, 1 + 4 * n], n ? 0 : 16); write([0x1f, 1 + 4 * n], n ? 0 : 16);
    }
  }
  write(bus.sock(0x00), 0x04);
  write(bus.sock(0x01), 0x01);
  write(bus.sock(0x2c), 0x04);
  const frame = new Uint8Array(FRAME_LEN).fill(0xff); // broadcast: passes any filter

  let frames = 0;
  spiBytes = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < deadline) {
    for (let k = 0; k < 200; k++) {
      chip.receiveFrame(frame);
      size16(0x26);
      read(bus.sock(0x00)); size16(0x26); read(bus.sock(0x03));
      recvData(2); recvCmd();
      recvData(FRAME_LEN); recvCmd();
      size16(0x26); // 0: the poll loop ends
      write(bus.common(0x15), 0x00);
      write(bus.sock(0x02), w5100s ? 0x04 : 0x1f);
      frames++;
    }
    now = process.hrtime.bigint();
  }
  const secs = Number(now - t0) / 1e9;
  if (chip.stats.rxFrames !== frames) throw new Error(`frames dropped: ${chip.stats.rxFrames}/${frames}`);
  return { secs, frames, bytes: spiBytes };
}

for (const [Chip, bus] of [[W5100S, W5100S_BUS], [W5500, W5500_BUS]]) {
  const chip = new Chip();
  run(chip, bus); // warm-up (JIT)
  const r = run(new Chip(), bus);
  const perFrame = r.bytes / r.frames;
  console.log(`${Chip.name}: ${(r.bytes / r.secs / 1e6).toFixed(1)} M exchange()/s `
    + `(${(r.frames / r.secs / 1e3).toFixed(0)} k frames/s, ${perFrame.toFixed(0)} SPI bytes per `
    + `${FRAME_LEN}-byte frame received, incl. select/deselect)`);
}
