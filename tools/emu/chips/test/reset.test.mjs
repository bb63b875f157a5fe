// Reset values, MR.RST, the RST pin and the stuckCommand fault, for both chips.
// W5500: datasheet v1.0.9 ch. 4.1 (common registers) and 4.2 (socket registers), reset value in
// the [R/W] [address] [reset] header of each register. W5100S: datasheet ch. 4 "Register
// Descriptions", same header convention (VERR 0x0080 = 0x51).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADAPTERS, OWN_MAC, openMacraw } from '../testkit/spi.mjs';

for (const Adapter of ADAPTERS) {
  const name = new Adapter().name;

  test(`${name}: version register and basic reset values`, () => {
    const ad = new Adapter();
    // W5500 4.1 VERSIONR [R] [0x0039] [0x04]; W5100S 4.1 VERR [R] [0x0080] [0x51].
    assert.equal(ad.chip.versionRegister, ad.VERSION);
    assert.equal(ad.chip.version, ad.VERSION_VALUE);
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
    // The version register is read-only.
    ad.writeCommon(ad.VERSION, 0x00);
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
    // MR: W5500 4.1 MR [0x00]; W5100S MR [0x03] (AI and IND set; unused in SPI mode).
    assert.equal(ad.readCommon(ad.MR), name === 'W5500' ? 0x00 : 0x03);
    // GAR/SUBR/SHAR/SIPR reset to 0.
    assert.deepEqual([...ad.readCommonBuf(0x01, 18)], new Array(18).fill(0));
    // IR 0, IMR 0.
    assert.equal(ad.readCommon(ad.IR), 0);
    assert.equal(ad.readCommon(0x16), 0);
    for (let n = 0; n < (name === 'W5500' ? 8 : 4); n++) {
      // Sn_MR 0x00, Sn_CR 0x00, Sn_IR 0x00, Sn_SR SOCK_CLOSED 0x00 (4.2).
      assert.equal(ad.readSock(n, 0x00), 0);
      assert.equal(ad.readSock(n, 0x01), 0);
      assert.equal(ad.readSock(n, 0x02), 0);
      assert.equal(ad.readSock(n, 0x03), 0x00);
      // Sn_DHAR 0xFFFFFFFFFFFF, Sn_TTL 0x80, Sn_IMR 0xFF, Sn_FRAG 0x4000.
      for (let i = 0; i < 6; i++) assert.equal(ad.readSock(n, 0x06 + i), 0xff);
      assert.equal(ad.readSock(n, 0x16), 0x80);
      assert.equal(ad.readSock(n, 0x2c), 0xff);
      assert.equal(ad.readSock16(n, 0x2d), 0x4000);
      // 2 KB per socket: Sn_TX_FSR 0x0800, Sn_RXBUF/TXBUF_SIZE 2 (W5500), pointers 0.
      assert.equal(ad.readSock16(n, 0x20), 0x0800);
      assert.equal(ad.readSock(n, 0x1e), 2);
      assert.equal(ad.readSock(n, 0x1f), 2);
      for (const off of [0x22, 0x24, 0x26, 0x28, 0x2a]) assert.equal(ad.readSock16(n, off), 0);
    }
  });

  test(`${name}: MR.RST resets every register and self-clears`, () => {
    const ad = new Adapter();
    ad.writeCommonBuf(ad.SHAR, OWN_MAC);
    ad.writeCommon(0x16, 0xff);
    assert.equal(openMacraw(ad), 0x42);
    // W5500 4.1 MR bit 7 RST: "If this bit is '1', All internal registers will be initialized.
    // It will be automatically cleared as '0' after S/W reset." (W5100S MR RST likewise.)
    ad.writeCommon(ad.MR, 0x80);
    assert.equal(ad.readCommon(ad.MR) & 0x80, 0);
    assert.deepEqual([...ad.readCommonBuf(ad.SHAR, 6)], [0, 0, 0, 0, 0, 0]);
    assert.equal(ad.readCommon(0x16), 0);
    assert.equal(ad.readSock(0, 0x03), 0x00);
    assert.equal(ad.readSock(0, 0x00), 0x00);
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
  });

  test(`${name}: RST pin holds the chip silent and resets it on release`, () => {
    const ad = new Adapter();
    ad.writeCommonBuf(ad.SHAR, OWN_MAC);
    openMacraw(ad);
    ad.chip.setReset(true);
    // While RST is low the chip does not answer: every byte reads 0x00.
    const out = ad.bus.readBuf(ad.VERSION, 1, 0);
    ad.chip.select(true);
    assert.equal(ad.chip.exchange(name === 'W5500' ? 0x00 : 0x0f), 0x00);
    assert.equal(ad.chip.exchange(0x00), 0x00);
    assert.equal(ad.chip.exchange(ad.VERSION), 0x00);
    assert.equal(ad.chip.exchange(0x00), 0x00);
    ad.chip.select(false);
    assert.equal(out[0], 0x00);
    assert.equal(ad.chip.receiveFrame(new Uint8Array(60)), false);
    ad.chip.setReset(false);
    assert.deepEqual([...ad.readCommonBuf(ad.SHAR, 6)], [0, 0, 0, 0, 0, 0]);
    assert.equal(ad.readSock(0, 0x03), 0x00);
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
  });

  test(`${name}: stuckCommand fault: version answers, commands and MR.RST never complete`, () => {
    const ad = new Adapter();
    ad.writeCommonBuf(ad.SHAR, OWN_MAC);
    ad.chip.faults.stuckCommand = true;
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
    ad.writeSock(0, 0x00, 0x04);
    ad.writeSock(0, 0x01, 0x01); // OPEN
    for (let i = 0; i < 5; i++) assert.equal(ad.readSock(0, 0x01), 0x01);
    assert.equal(ad.readSock(0, 0x03), 0x00); // never opened
    ad.writeCommon(ad.MR, 0x80);
    for (let i = 0; i < 5; i++) assert.equal(ad.readCommon(ad.MR) & 0x80, 0x80);
    assert.deepEqual([...ad.readCommonBuf(ad.SHAR, 6)], [...OWN_MAC]); // no reset happened
    assert.equal(ad.chip.stats.commands.OPEN, 1);
    // Clearing the fault lets the next command through.
    ad.chip.faults.stuckCommand = false;
    ad.writeSock(0, 0x01, 0x01);
    assert.equal(ad.readSock(0, 0x01), 0x00);
    assert.equal(ad.readSock(0, 0x03), 0x42);
  });
}
