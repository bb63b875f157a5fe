// MACRAW socket 0: OPEN/CLOSE, the RX ring with its 2-byte length headers, RECV, the TX ring,
// SEND/SEND_OK, Sn_IR write-1-to-clear, for both chips.
// W5500 datasheet 4.2: Sn_CR (OPEN/CLOSE/SEND/RECV; "after W5500 accepts the command, Sn_CR is
// cleared to 0x00"), Sn_SR (SOCK_CLOSED 0x00, SOCK_MACRAW 0x42), Sn_IR (SENDOK bit 4, RECV bit 2,
// "write '1' to clear"), Sn_TX_FSR/TX_RD/TX_WR, Sn_RX_RSR/RX_RD/RX_WR (16-bit, carry ignored,
// RECV command notifies the updated Sn_RX_RD; "read all 16 bits twice or more until getting the
// same value"). MACRAW RX data format: 2-byte PACKET-INFO (length incl. the 2 bytes) then the
// frame (the driver: recvfrom() takes head[0..1] - 2 as the frame length). W5100S datasheet:
// the same socket registers at 0x0400 + n*0x100, buffers at 0x4000 (TX) / 0x6000 (RX).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADAPTERS, OWN_MAC, makeFrame, openMacraw, recvMacraw, sendMacraw,
} from '../testkit/spi.mjs';

function setup(Adapter, { txKB = 1, rxKB = 1 } = {}) {
  const ad = new Adapter();
  ad.writeCommonBuf(ad.SHAR, OWN_MAC);
  ad.setSizes(txKB, rxKB);
  assert.equal(openMacraw(ad), 0x42);
  return ad;
}

for (const Adapter of ADAPTERS) {
  const name = new Adapter().name;

  test(`${name}: OPEN in MACRAW gives SOCK_MACRAW and fresh pointers; CLOSE gives SOCK_CLOSED`, () => {
    const ad = setup(Adapter);
    assert.equal(ad.readSock(0, 0x01), 0x00); // Sn_CR cleared once accepted
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 100));
    assert.equal(ad.readSock16(0, 0x26), 102);
    ad.writeSock(0, 0x01, 0x10); // CLOSE
    assert.equal(ad.readSock(0, 0x01), 0x00);
    assert.equal(ad.readSock(0, 0x03), 0x00);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 100)), false);
    assert.equal(ad.chip.stats.rxDroppedClosed, 1);
    ad.writeSock(0, 0x01, 0x01); // OPEN again: pointers start over
    assert.equal(ad.readSock(0, 0x03), 0x42);
    for (const off of [0x22, 0x24, 0x26, 0x28, 0x2a]) assert.equal(ad.readSock16(0, off), 0);
    assert.equal(ad.readSock16(0, 0x20), 1024);
    assert.deepEqual(ad.chip.stats.commands, { CLOSE: 2, OPEN: 2 });
  });

  test(`${name}: MACRAW is socket 0 only; UDP on socket 1 opens as SOCK_UDP`, () => {
    const ad = new Adapter();
    ad.writeSock(1, 0x00, 0x04);
    ad.writeSock(1, 0x01, 0x01);
    assert.equal(ad.readSock(1, 0x03), 0x00);
    ad.writeSock(1, 0x00, 0x02);
    ad.writeSock(1, 0x01, 0x01);
    assert.equal(ad.readSock(1, 0x03), 0x22);
  });

  test(`${name}: received frames are stored as 2-byte length + frame, RSR counts them`, () => {
    const ad = setup(Adapter);
    const f1 = makeFrame(OWN_MAC, 60, 0x0806, 1);
    const f2 = makeFrame(OWN_MAC, 200, 0x0800, 2);
    assert.equal(ad.chip.receiveFrame(f1), true);
    assert.equal(ad.chip.receiveFrame(f2), true);
    assert.equal(ad.readSock16(0, 0x26), 62 + 202);
    assert.equal(ad.readSock16(0, 0x2a), 62 + 202); // Sn_RX_WR
    assert.deepEqual([...ad.readRx(0, 0, 2)], [0x00, 62]);
    assert.deepEqual(ad.readRx(0, 2, 60), f1);
    assert.deepEqual([...ad.readRx(0, 62, 2)], [0x00, 202]);
    assert.deepEqual(recvMacraw(ad), f1);
    assert.deepEqual(recvMacraw(ad), f2);
    assert.equal(recvMacraw(ad), null);
    assert.equal(ad.readSock16(0, 0x26), 0);
    assert.equal(ad.chip.stats.rxFrames, 2);
  });

  test(`${name}: RX ring wraps: frame data and the length header itself`, () => {
    const ad = setup(Adapter); // 1 KB RX ring
    // 1021 + 2 = 1023 bytes: the next header lands on the last byte and the first byte.
    const big = makeFrame(OWN_MAC, 1021, 0x0800, 7);
    assert.ok(ad.chip.receiveFrame(big));
    assert.deepEqual(recvMacraw(ad), big);
    const f = makeFrame(OWN_MAC, 300, 0x0800, 9);
    assert.ok(ad.chip.receiveFrame(f));
    const base = ad.chip.rxBase[0];
    assert.equal(ad.chip.rxMem[base + 1023], (302 >> 8)); // header high byte at the end
    assert.equal(ad.chip.rxMem[base + 0], 302 & 0xff); // low byte wrapped to the start
    assert.deepEqual([...ad.readRx(0, 1023, 2)], [302 >> 8, 302 & 0xff]);
    assert.deepEqual(recvMacraw(ad), f);
    // Data wrapping in the middle of a frame: pointer now 1023 + 302 = 1325 (offset 301).
    assert.equal(ad.readSock16(0, 0x28), 1325);
    const g = makeFrame(OWN_MAC, 800, 0x0800, 11); // offsets 301..1102 -> wraps at 1024
    assert.ok(ad.chip.receiveFrame(g));
    assert.deepEqual(recvMacraw(ad), g);
    assert.equal(ad.readSock16(0, 0x26), 0);
  });

  test(`${name}: RX full: a frame without room for header + frame is dropped and counted`, () => {
    const ad = setup(Adapter);
    for (let i = 0; i < 3; i++) assert.ok(ad.chip.receiveFrame(makeFrame(OWN_MAC, 300, 0x0800, i)));
    assert.equal(ad.readSock16(0, 0x26), 906);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 300)), false); // 118 bytes free
    assert.equal(ad.chip.stats.rxDroppedFull, 1);
    assert.ok(ad.chip.receiveFrame(makeFrame(OWN_MAC, 116))); // exactly 118 with its header
    assert.equal(ad.readSock16(0, 0x26), 1024);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 14)), false);
    assert.equal(ad.chip.stats.rxDroppedFull, 2);
  });

  test(`${name}: only RECV releases space: advancing Sn_RX_RD alone does not`, () => {
    const ad = setup(Adapter);
    for (let i = 0; i < 3; i++) ad.chip.receiveFrame(makeFrame(OWN_MAC, 300, 0x0800, i));
    ad.writeSock16(0, 0x28, 302); // host advanced Sn_RX_RD past frame 1, no RECV yet
    assert.equal(ad.readSock16(0, 0x26), 906);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 300)), false);
    ad.writeSock(0, 0x01, 0x40); // RECV
    assert.equal(ad.readSock(0, 0x01), 0x00);
    assert.equal(ad.readSock16(0, 0x26), 604);
    assert.ok(ad.chip.receiveFrame(makeFrame(OWN_MAC, 300)));
    assert.equal(ad.readSock16(0, 0x26), 906);
  });

  test(`${name}: SEND transmits Sn_TX_RD..Sn_TX_WR across the ring end, sets SEND_OK`, () => {
    const ad = setup(Adapter); // 1 KB TX ring
    const sent = [];
    ad.chip.onTransmit = (f) => sent.push(f);
    const a = makeFrame(OWN_MAC, 600, 0x0800, 3);
    const b = makeFrame(OWN_MAC, 600, 0x0800, 5); // occupies offsets 600..1023 then 0..175
    sendMacraw(ad, a);
    assert.equal(ad.readSock16(0, 0x20), 1024);
    // b by hand, to look at the registers before the driver clears SEND_OK.
    assert.equal(ad.readSock16(0, 0x24), 600);
    ad.writeTx(0, 600, b);
    ad.writeSock16(0, 0x24, 1200);
    assert.equal(ad.readSock16(0, 0x20), 1024 - 600); // Sn_TX_FSR counts the queued bytes
    ad.writeSock(0, 0x01, 0x20); // SEND
    assert.equal(ad.readSock(0, 0x01), 0x00);
    assert.equal(ad.readSock(0, 0x02) & 0x10, 0x10); // SEND_OK
    assert.equal(ad.readSock16(0, 0x22), 1200); // Sn_TX_RD caught up with Sn_TX_WR
    assert.equal(ad.readSock16(0, 0x20), 1024);
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[0], a);
    assert.deepEqual(sent[1], b);
    assert.equal(ad.chip.stats.txFrames, 2);
    assert.equal(ad.chip.stats.commands.SEND, 2);
  });

  test(`${name}: Sn_IR is write-1-to-clear, bit by bit`, () => {
    const ad = setup(Adapter);
    ad.chip.onTransmit = () => {};
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
    const f = makeFrame(OWN_MAC, 60);
    ad.writeTx(0, 0, f);
    ad.writeSock16(0, 0x24, 60);
    ad.writeSock(0, 0x01, 0x20);
    assert.equal(ad.readSock(0, 0x02), 0x14); // SEND_OK | RECV
    ad.writeSock(0, 0x02, 0x00); // writing 0 changes nothing
    assert.equal(ad.readSock(0, 0x02), 0x14);
    ad.writeSock(0, 0x02, 0x04);
    assert.equal(ad.readSock(0, 0x02), 0x10);
    ad.writeSock(0, 0x02, 0xff);
    assert.equal(ad.readSock(0, 0x02), 0x00);
  });

  test(`${name}: 16-bit RSR read as two bytes: the two-reads-agree rule yields a stable value`, () => {
    const ad = setup(Adapter, { rxKB: 2 });
    for (let i = 0; i < 4; i++) ad.chip.receiveFrame(makeFrame(OWN_MAC, 60)); // RSR = 248 (0x00F8)
    // A frame arriving between the high and the low byte read gives a torn value once...
    let injected = false;
    const readByte = (i) => {
      const v = ad.readSock(0, 0x26 + i);
      if (i === 0 && !injected) { injected = true; ad.chip.receiveFrame(makeFrame(OWN_MAC, 60)); }
      return v;
    };
    const torn = (readByte(0) << 8) | readByte(1);
    assert.equal(torn, 0x0036); // high byte of 248 (0x00), low byte of 310 (0x36)
    // ...and re-reading until two reads agree gives the real count.
    assert.equal(ad.readSock16(0, 0x26), 310);
    assert.equal(ad.readSock16(0, 0x26), 310);
  });
}
