// SPI framing of each chip, byte by byte through select()/exchange().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { W5100S } from '../w5100s.mjs';
import { W5500 } from '../w5500.mjs';
import { W5100SBus, W5500Bus } from '../testkit/spi.mjs';

// ---- W5100S -------------------------------------------------------------------------------
// W5100S datasheet, "SPI Operation": frame = OP code (0xF0 write / 0x0F read), 16-bit address,
// data; in burst mode the address increases by one per data byte while SCSn stays low
// (lib w5100s.c WIZCHIP_WRITE_BUF sends the header once and then len bytes).

test('W5100S: single-byte write then read back (0xF0 / 0x0F frames)', () => {
  const chip = new W5100S();
  const bus = new W5100SBus(chip);
  bus.write(0x0001, 0xc0); // GAR0
  assert.equal(bus.read(0x0001), 0xc0);
  // Raw bytes: MISO is 0x00 during the header, the register byte in the data phase.
  chip.select(true);
  assert.deepEqual([0x0f, 0x00, 0x01, 0x00].map((b) => chip.exchange(b)), [0, 0, 0, 0xc0]);
  chip.select(false);
});

test('W5100S: burst write and burst read auto-increment the address', () => {
  const chip = new W5100S();
  const bus = new W5100SBus(chip);
  const mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
  bus.writeBuf(0x0009, mac); // SHAR, one frame
  assert.equal(bus.frames, 1);
  for (let i = 0; i < 6; i++) assert.equal(bus.read(0x0009 + i), mac[i]);
  assert.deepEqual([...bus.readBuf(0x0009, 6)], mac);
  // A burst through TX memory runs straight across the 0x5FFF/0x6000 boundary (no wrap).
  bus.writeBuf(0x5ffe, [1, 2, 3, 4]);
  assert.deepEqual([...bus.readBuf(0x5ffe, 4)], [1, 2, 3, 4]);
  assert.equal(chip.rxMem[0], 3);
});

test('W5100S: unknown opcode: the rest of the frame is ignored; next frame works', () => {
  const chip = new W5100S();
  const bus = new W5100SBus(chip);
  bus.frame([0xaa, 0x00, 0x01, 0x55]);
  assert.equal(bus.read(0x0001), 0x00);
  bus.write(0x0001, 0x42);
  assert.equal(bus.read(0x0001), 0x42);
});

test('W5100S: unimplemented addresses keep what was written; outside blocks read 0', () => {
  const bus = new W5100SBus(new W5100S());
  bus.write(0x00f0, 0x5a); // unlisted common register
  assert.equal(bus.read(0x00f0), 0x5a);
  bus.write(0x04f0, 0xa5); // unlisted socket 0 register
  assert.equal(bus.read(0x04f0), 0xa5);
  bus.write(0x1000, 0x77); // between blocks
  assert.equal(bus.read(0x1000), 0x00);
});

// ---- W5500 --------------------------------------------------------------------------------
// W5500 datasheet 2.2 SPI Frame: 16-bit offset, control byte BSB[4:0] | RWB | OM[1:0], data.
// 2.2.2 Control Phase: BSB 00000 common, 00001 S0 register, 00010 S0 TX, 00011 S0 RX, ...
// (n*4+1/2/3); RWB 1 = write; OM 00 VDM, 01/10/11 FDM 1/2/4 bytes. 2.3 VDM: length set by SCSn.
// 2.4 FDM: SCSn may stay low; each frame carries exactly 1/2/4 data bytes.

test('W5500: VDM write then read back, raw bytes', () => {
  const chip = new W5500();
  const bus = new W5500Bus(chip);
  bus.write(0x0001, 0xc0, 0); // GAR0 in the common block
  assert.equal(bus.read(0x0001, 0), 0xc0);
  chip.select(true);
  // offset 0x0039 (VERSIONR), control 0x00 (common, read, VDM), one data byte.
  assert.deepEqual([0x00, 0x39, 0x00, 0x00].map((b) => chip.exchange(b)), [0, 0, 0, 0x04]);
  chip.select(false);
});

test('W5500: VDM burst auto-increments across registers', () => {
  const bus = new W5500Bus(new W5500());
  const mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
  bus.writeBuf(0x0009, mac, 0);
  for (let i = 0; i < 6; i++) assert.equal(bus.read(0x0009 + i, 0), mac[i]);
  assert.deepEqual([...bus.readBuf(0x0001, 18, 0)].slice(8, 14), mac);
});

test('W5500: block select: same offset in common, socket 0 and socket 1 register blocks', () => {
  const bus = new W5500Bus(new W5500());
  bus.write(0x0004, 0x11, 0); // GAR3
  bus.write(0x0004, 0x22, 1); // S0_PORT0
  bus.write(0x0004, 0x33, 5); // S1_PORT0
  assert.equal(bus.read(0x0004, 0), 0x11);
  assert.equal(bus.read(0x0004, 1), 0x22);
  assert.equal(bus.read(0x0004, 5), 0x33);
  // Socket 0 TX (BSB 2) and RX (BSB 3) buffers are separate memories.
  bus.writeBuf(0x0000, [0xaa, 0xbb], 2);
  bus.writeBuf(0x0000, [0xcc, 0xdd], 3);
  assert.deepEqual([...bus.readBuf(0x0000, 2, 2)], [0xaa, 0xbb]);
  assert.deepEqual([...bus.readBuf(0x0000, 2, 3)], [0xcc, 0xdd]);
  // Reserved block (BSB 00100): reads 0, writes dropped.
  bus.write(0x0000, 0x99, 4);
  assert.equal(bus.read(0x0000, 4), 0x00);
});

test('W5500: buffer offsets wrap at the socket buffer size', () => {
  const bus = new W5500Bus(new W5500());
  // 2 KB default: offset 0x0800 is offset 0 again; a burst at 0x07FF wraps to 0.
  bus.writeBuf(0x07ff, [1, 2, 3], 2);
  assert.deepEqual([...bus.readBuf(0x0000, 2, 2)], [2, 3]);
  assert.deepEqual([...bus.readBuf(0xf7ff, 3, 2)], [1, 2, 3]);
});

test('W5500: FDM 1/2/4-byte frames with CS held low', () => {
  const chip = new W5500();
  chip.select(true);
  const x = (bytes) => bytes.map((b) => chip.exchange(b));
  // OM=01: one byte per frame; two back-to-back write frames without releasing CS.
  x([0x00, 0x01, 0x05, 0xc0]); // GAR0 = 0xC0 (BSB 0, RWB 1, OM 01)
  x([0x00, 0x02, 0x05, 0xa8]); // GAR1 = 0xA8
  // OM=10: two bytes; OM=11: four bytes.
  x([0x00, 0x03, 0x06, 0x00, 0x01]); // GAR2..3
  x([0x00, 0x05, 0x07, 0xff, 0xff, 0xff, 0x00]); // SUBR
  // Reads in FDM: 4-byte read of GAR then 1-byte read of VERSIONR, still without CS.
  assert.deepEqual(x([0x00, 0x01, 0x03, 0, 0, 0, 0]).slice(3), [0xc0, 0xa8, 0x00, 0x01]);
  assert.deepEqual(x([0x00, 0x39, 0x01, 0]).slice(3), [0x04]);
  chip.select(false);
  const bus = new W5500Bus(chip);
  assert.deepEqual([...bus.readBuf(0x0005, 4, 0)], [0xff, 0xff, 0xff, 0x00]);
});

test('W5500: CS high ends a VDM frame; the next frame starts with the address phase', () => {
  const chip = new W5500();
  chip.select(true);
  [0x00, 0x01, 0x04, 0x11, 0x22].forEach((b) => chip.exchange(b));
  chip.select(false);
  chip.select(true);
  [0x00, 0x10, 0x04, 0x33].forEach((b) => chip.exchange(b)); // SIPR1
  chip.select(false);
  const bus = new W5500Bus(chip);
  assert.deepEqual([...bus.readBuf(0x0001, 3, 0)], [0x11, 0x22, 0x00]);
  assert.equal(bus.read(0x0010, 0), 0x33);
});
