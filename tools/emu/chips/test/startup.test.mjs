// Each model driven through the SPI transactions the MicroPython v1.28.0 WIZNET5K driver makes
// at start-up (testkit/driver.mjs: RST pulse, wizchip_sw_reset with the SHAR/GAR/SUBR/SIPR
// save-and-restore, buffer sizes 8 KB (W5100S TMSR/RMSR) / 16 KB (W5500 Sn_*BUF_SIZE) for
// socket 0, IMR/SIMR/Sn_IMR (+ MR2.IEN on the W5100S), socket(0, MACRAW) then MFEN, SHAR),
// then receiving frames on INTn and sending frames as lwIP's linkoutput does.
// W5500 datasheet 5 (Functional Description: initialization, MACRAW); W5100S datasheet 5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicroPythonDriver } from '../testkit/driver.mjs';
import {
  ADAPTERS, OWN_MAC, OTHER_MAC, BCAST_MAC, IPV4_MCAST_MAC, makeFrame,
} from '../testkit/spi.mjs';

function boot(Adapter) {
  const ad = new Adapter();
  const drv = new MicroPythonDriver(ad);
  const levels = [];
  const wire = [];
  ad.chip.onInterrupt = (l) => levels.push(l);
  ad.chip.onTransmit = (f) => wire.push(f);
  drv.activate(OWN_MAC);
  return { ad, drv, levels, wire };
}

for (const Adapter of ADAPTERS) {
  const name = new Adapter().name;
  const w5100s = name === 'W5100S';

  test(`${name}: the driver's start-up sequence leaves the chip as the firmware expects`, () => {
    const { ad, drv, levels } = boot(Adapter);
    const c = ad.chip;
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
    assert.deepEqual([...ad.readCommonBuf(0x09, 6)], [...OWN_MAC]);
    assert.equal(ad.readSock(0, 0x03), 0x42); // SOCK_MACRAW
    assert.equal(ad.readSock(0, 0x00), w5100s ? 0x44 : 0x84); // MACRAW | MFEN
    assert.equal(ad.readSock(0, 0x2c), 0x04); // Sn_IMR = RECV
    if (w5100s) {
      assert.equal(ad.readCommon(0x1b), 0x03); // TMSR: S0 8 KB (S1..S3 code 0, no room left)
      assert.equal(ad.readCommon(0x1a), 0x03); // RMSR
      assert.equal(ad.readCommon(0x16), 0x01); // IMR S0_INT
      assert.equal(ad.readCommon(0x30) & 0x40, 0x40); // MR2 IEN
      assert.equal(c.txSize[0], 8192);
      assert.equal(c.rxSize[0], 8192);
      assert.deepEqual([...c.txSize.slice(1)], [0, 0, 0]);
    } else {
      assert.equal(ad.readSock(0, 0x1f), 16);
      assert.equal(ad.readSock(0, 0x1e), 16);
      assert.equal(ad.readCommon(0x18), 0x01); // SIMR S0
      assert.equal(c.txSize[0], 16384);
      assert.equal(c.rxSize[0], 16384);
    }
    assert.equal(ad.readSock16(0, 0x20), c.txSize[0]); // Sn_TX_FSR: all free
    assert.equal(drv.linkUp(), true);
    assert.equal(c.intn, true);
    assert.deepEqual(levels, []);
    assert.deepEqual(c.stats.commands, { CLOSE: 1, OPEN: 1 });
  });

  test(`${name}: after start-up, frames arrive on INTn, the poll drains them and releases INTn`, () => {
    const { ad, drv, levels } = boot(Adapter);
    const c = ad.chip;
    const arp = makeFrame(BCAST_MAC, 42, 0x0806, 1);
    const ours = makeFrame(OWN_MAC, 590, 0x0800, 2);
    const group = makeFrame(IPV4_MCAST_MAC, 200, 0x0800, 3);
    const notOurs = makeFrame(OTHER_MAC, 100, 0x0800, 4);
    assert.ok(c.receiveFrame(arp));
    assert.deepEqual(levels, [false]); // the falling edge that schedules wiznet5k_poll
    assert.ok(c.receiveFrame(ours));
    assert.ok(c.receiveFrame(group));
    assert.equal(c.receiveFrame(notOurs), false); // MFEN: unicast to another MAC
    assert.deepEqual(drv.poll(), [arp, ours, group]);
    assert.equal(c.intn, true);
    assert.deepEqual(levels, [false, true]);
    assert.equal(c.stats.rxFrames, 3);
    assert.equal(c.stats.rxDroppedFiltered, 1);
    assert.equal(c.stats.commands.RECV, 6); // two per frame: after the header and after the data
  });

  test(`${name}: after start-up, lwIP's frames go out intact; SEND_OK does not touch INTn`, () => {
    const { ad, drv, levels, wire } = boot(Adapter);
    const reply = makeFrame(OTHER_MAC, 42, 0x0806, 5);
    assert.equal(drv.sendEthernet(reply), 42);
    assert.deepEqual(wire, [reply]);
    assert.equal(ad.readSock(0, 0x02), 0x00); // the driver cleared SEND_OK
    assert.deepEqual(levels, []);
    if (w5100s) assert.deepEqual([...ad.readCommonBuf(0x05, 4)], [0, 0, 0, 0]); // errata dance
  });

  test(`${name}: sustained traffic through both rings: every frame intact, pointers wrap 16 bits`, () => {
    const { ad, drv, wire } = boot(Adapter);
    const c = ad.chip;
    const sentFrames = [];
    const recvFrames = [];
    let got = 0;
    // ~300 KB each way: many trips round the 8/16 KB rings and past 0xFFFF in the pointers.
    for (let i = 0; i < 400; i++) {
      const len = 60 + ((i * 97) % 1455);
      const rx = makeFrame(i % 3 ? OWN_MAC : BCAST_MAC, len, 0x0800, i);
      if (c.receiveFrame(rx)) recvFrames.push(rx);
      if (i % 4 === 3) {
        for (const f of drv.poll()) assert.deepEqual(f, recvFrames[got++]);
      }
      const tx = makeFrame(OTHER_MAC, 60 + ((i * 31) % 1455), 0x0800, i + 1);
      drv.sendEthernet(tx);
      sentFrames.push(tx);
    }
    for (const f of drv.poll()) assert.deepEqual(f, recvFrames[got++]);
    assert.equal(got, recvFrames.length);
    assert.equal(c.stats.rxDroppedFull, 400 - recvFrames.length);
    assert.ok(recvFrames.length > 300, `only ${recvFrames.length} of 400 fitted`);
    assert.equal(wire.length, sentFrames.length);
    wire.forEach((f, i) => assert.deepEqual(f, sentFrames[i]));
    const txTotal = sentFrames.reduce((s, f) => s + f.length, 0);
    assert.ok(txTotal > 0x10000);
    assert.equal(ad.readSock16(0, 0x22), txTotal & 0xffff); // Sn_TX_RD, carry ignored
    assert.equal(c.intn, true);
  });

  test(`${name}: with the stuckCommand fault the driver's socket() never returns`, () => {
    const ad = new Adapter();
    const drv = new MicroPythonDriver(ad);
    ad.chip.faults.stuckCommand = true;
    // wizchip_sw_reset completes (nothing waits on MR), the version still answers...
    drv.wizchipSwReset();
    assert.equal(ad.readCommon(ad.VERSION), ad.VERSION_VALUE);
    // ...but close() spins on Sn_CR forever (bounded here).
    let spins = 0;
    ad.writeSock(0, 0x01, 0x10);
    while (ad.readSock(0, 0x01) && spins < 1000) spins++;
    assert.equal(spins, 1000);
  });
}
