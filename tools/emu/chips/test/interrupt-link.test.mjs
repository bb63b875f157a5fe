// INTn level and the PHY link, for both chips.
// W5500 datasheet 4.1 IR/IMR/SIR/SIMR and 4.2 Sn_IMR: INTn is asserted low while an unmasked
// interrupt bit is set and released when it is cleared ("If Sn_IR is not equal to '0x00', the
// n-th bit of SIR is '1' and INTn PIN is asserted until SIR is '0x00'"); PHYCFGR bit 0 LNK,
// bit 1 SPD, bit 2 DPX. W5100S datasheet IR/IMR (S0_INT..S3_INT follow Sn_IR), MR2 bit 6 IEN
// (INTn enable; the driver sets it: setMR2(getMR2() | MR2_G_IEN)), PHYSR bit 0 LNK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADAPTERS, OWN_MAC, makeFrame, openMacraw, recvMacraw, sendMacraw,
} from '../testkit/spi.mjs';

function setup(Adapter) {
  const ad = new Adapter();
  const levels = [];
  ad.chip.onInterrupt = (level) => levels.push(level);
  ad.writeCommonBuf(ad.SHAR, OWN_MAC);
  openMacraw(ad);
  return { ad, levels };
}

for (const Adapter of ADAPTERS) {
  const name = new Adapter().name;

  test(`${name}: INTn is asserted on receive, stays while Sn_IR.RECV is set, released on clear`, () => {
    const { ad, levels } = setup(Adapter);
    assert.equal(ad.chip.intn, true);
    ad.enableInterrupts();
    assert.deepEqual(levels, []);
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
    assert.equal(ad.chip.intn, false);
    assert.deepEqual(levels, [false]);
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 60)); // a level, not a pulse: no new edge
    assert.deepEqual(levels, [false]);
    recvMacraw(ad);
    recvMacraw(ad); // data gone, flag still set: INTn stays low
    assert.equal(ad.chip.intn, false);
    ad.writeSock(0, 0x02, 0x10); // clearing another bit leaves it asserted
    assert.equal(ad.chip.intn, false);
    ad.writeSock(0, 0x02, 0x04); // clear RECV
    assert.equal(ad.chip.intn, true);
    assert.deepEqual(levels, [false, true]);
  });

  test(`${name}: Sn_IMR gates INTn, not Sn_IR: SEND_OK is set but does not assert with IMR=RECV`, () => {
    const { ad, levels } = setup(Adapter);
    ad.chip.onTransmit = () => {};
    ad.enableInterrupts(0x04);
    ad.writeTx(0, 0, makeFrame(OWN_MAC, 60));
    ad.writeSock16(0, 0x24, 60);
    ad.writeSock(0, 0x01, 0x20);
    assert.equal(ad.readSock(0, 0x02), 0x10);
    assert.equal(ad.chip.intn, true);
    ad.writeSock(0, 0x2c, 0x00); // Sn_IMR = 0: even RECV stays off the pin
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
    assert.equal(ad.readSock(0, 0x02), 0x14);
    assert.equal(ad.chip.intn, true);
    ad.writeSock(0, 0x2c, 0x04); // unmasking a pending flag asserts at once
    assert.equal(ad.chip.intn, false);
    assert.deepEqual(levels, [false]);
  });

  test(`${name}: RST releases INTn`, () => {
    const { ad, levels } = setup(Adapter);
    ad.enableInterrupts();
    ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
    ad.chip.setReset(true);
    assert.equal(ad.chip.intn, true);
    ad.chip.setReset(false);
    assert.equal(ad.chip.intn, true);
    assert.deepEqual(levels, [false, true]);
  });

  test(`${name}: link bit follows the cable; frames are dropped both ways while down`, () => {
    const { ad } = setup(Adapter);
    const sent = [];
    ad.chip.onTransmit = (f) => sent.push(f);
    assert.equal(ad.linkBit(), 1);
    ad.chip.setLink(false);
    assert.equal(ad.linkBit(), 0);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 60)), false);
    assert.equal(ad.chip.stats.rxDroppedLinkDown, 1);
    assert.equal(ad.readSock16(0, 0x26), 0);
    sendMacraw(ad, makeFrame(OWN_MAC, 60)); // completes (SEND_OK) but nothing reaches the wire
    assert.equal(sent.length, 0);
    assert.equal(ad.chip.stats.txDroppedLinkDown, 1);
    assert.equal(ad.chip.stats.txFrames, 0);
    ad.chip.setLink(true);
    assert.equal(ad.linkBit(), 1);
    assert.ok(ad.chip.receiveFrame(makeFrame(OWN_MAC, 60)));
    sendMacraw(ad, makeFrame(OWN_MAC, 60));
    assert.equal(sent.length, 1);
  });

  test(`${name}: a chip can start with the cable out`, () => {
    const ad = new Adapter({ link: false });
    assert.equal(ad.linkBit(), 0);
  });
}

test('W5100S: INTn needs MR2.IEN; IR S0_INT mirrors Sn_IR & Sn_IMR and is read-only', () => {
  const { ad } = setup(ADAPTERS[0]);
  ad.writeCommon(0x16, 0x01); // IMR S0_INT
  ad.writeSock(0, 0x2c, 0x04);
  ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
  assert.equal(ad.readCommon(0x15), 0x01);
  assert.equal(ad.chip.intn, true); // MR2 IEN (bit 6) still clear after reset
  ad.writeCommon(0x30, ad.readCommon(0x30) | 0x40);
  assert.equal(ad.chip.intn, false);
  // The driver's wizchip_clrinterrupt(IK_SOCK_0) writes IR = 0x11 & 0xE0 = 0: no effect, and
  // even writing S0_INT itself does not clear it: only Sn_IR does (hence the driver's extra
  // setSn_IR(0, Sn_IR_RECV) after the poll on the W5100S).
  ad.writeCommon(0x15, 0x00);
  ad.writeCommon(0x15, 0x01);
  assert.equal(ad.readCommon(0x15), 0x01);
  assert.equal(ad.chip.intn, false);
  ad.writeSock(0, 0x02, 0x04);
  assert.equal(ad.readCommon(0x15), 0x00);
  assert.equal(ad.chip.intn, true);
});

test('W5500: SIR mirrors Sn_IR & Sn_IMR, SIMR gates INTn, SIR is read-only', () => {
  const { ad } = setup(ADAPTERS[1]);
  ad.writeSock(0, 0x2c, 0x04);
  ad.chip.receiveFrame(makeFrame(OWN_MAC, 60));
  assert.equal(ad.readCommon(0x17), 0x01); // SIR S0
  assert.equal(ad.chip.intn, true); // SIMR 0
  ad.writeCommon(0x18, 0x01);
  assert.equal(ad.chip.intn, false);
  ad.writeCommon(0x17, 0xff); // SIR is read-only
  ad.writeCommon(0x15, 0x00); // wizchip_clrinterrupt: setIR(0) then setSn_IR(0, 0xff)
  assert.equal(ad.chip.intn, false);
  ad.writeSock(0, 0x02, 0xff);
  assert.equal(ad.readCommon(0x17), 0x00);
  assert.equal(ad.chip.intn, true);
});

test('W5500: PHYCFGR reads 0xBF with link (RST, OPMDC=111, DPX, SPD, LNK), 0xB8 without', () => {
  const { ad } = setup(ADAPTERS[1]);
  assert.equal(ad.readCommon(0x2e), 0xbf);
  ad.chip.setLink(false);
  assert.equal(ad.readCommon(0x2e), 0xb8);
  ad.writeCommon(0x2e, 0x7f); // status bits are not writable
  assert.equal(ad.readCommon(0x2e), 0x78);
});

test('W5100S: PHYSR LNK; PHY registers through PHYRAR/PHYACR/PHYDOR (wiz_mdio_read)', () => {
  const { ad } = setup(ADAPTERS[0]);
  assert.equal(ad.readCommon(0x3c), 0x01);
  const mdioRead = (reg) => {
    ad.writeCommon(0x3f, reg);
    ad.writeCommon(0x44, 0x02);
    while (ad.readCommon(0x44)) { /* wait */ }
    return (ad.readCommon(0x42) << 8) | ad.readCommon(0x43);
  };
  assert.equal(mdioRead(1) & 0x0004, 0x0004); // BMSR link status
  ad.chip.setLink(false);
  assert.equal(ad.readCommon(0x3c), 0x00);
  assert.equal(mdioRead(1) & 0x0004, 0);
  assert.equal(mdioRead(0), 0x3100); // BMCR: 100 Mb/s, auto-negotiation, full duplex
});
