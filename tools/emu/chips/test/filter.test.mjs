// The MACRAW MAC filter matrix, through each chip's own register bits.
// W5500 datasheet 4.2 Sn_MR: bit 7 MFEN (MAC filter enable in MACRAW: receive only broadcast
// and frames to SHAR), bit 6 BCASTB, bit 5 MMB (multicast blocking in MACRAW), bit 4 MIP6B
// (IPv6 packet blocking in MACRAW). W5100S datasheet Sn_MR bit 6 MF (MAC filter) and Sn_MR2
// bit 6 MBBLK, bit 5 MMBLK, bit 4 IPV6BLK. What MFEN does with multicast that is not ours is a
// model policy (chip.multicastPolicy, default 'pass'): the datasheet's "broadcast or own
// packets only" and socket.h's SF_ETHER_OWN ("broadcast, multicast and own packet") disagree,
// and the relay needs IPv4 multicast. Without MFEN every frame passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADAPTERS, OWN_MAC, OTHER_MAC, BCAST_MAC, IPV4_MCAST_MAC, IPV6_MCAST_MAC, makeFrame, openMacraw,
} from '../testkit/spi.mjs';

const FRAMES = {
  own: makeFrame(OWN_MAC, 60, 0x0800),
  ownIpv6: makeFrame(OWN_MAC, 80, 0x86dd),
  other: makeFrame(OTHER_MAC, 60, 0x0800),
  broadcast: makeFrame(BCAST_MAC, 60, 0x0806),
  ipv4mcast: makeFrame(IPV4_MCAST_MAC, 60, 0x0800),
  ipv6mcast: makeFrame(IPV6_MCAST_MAC, 90, 0x86dd),
};

// Expected with MFEN set, per (MMB, MIP6B) = (0,0) (0,1) (1,0) (1,1); policy 'pass'.
const MFEN_PASS = {
  own: [1, 1, 1, 1],
  ownIpv6: [1, 0, 1, 0],
  other: [0, 0, 0, 0],
  broadcast: [1, 1, 1, 1],
  ipv4mcast: [1, 1, 0, 0],
  ipv6mcast: [1, 0, 0, 0],
};
// Policy 'block' changes only multicast that MMB/MIP6B would otherwise let through.
const MFEN_BLOCK = { ...MFEN_PASS, ipv4mcast: [0, 0, 0, 0], ipv6mcast: [0, 0, 0, 0] };

const COMBOS = [[false, false], [false, true], [true, false], [true, true]];

function accepted(Adapter, { mfen, mmb, mip6b, bcastb = false, policy }, frame) {
  const ad = new Adapter();
  ad.writeCommonBuf(ad.SHAR, OWN_MAC);
  openMacraw(ad);
  ad.setFilter(0, { mfen, mmb, mip6b, bcastb });
  ad.chip.multicastPolicy = policy;
  const ok = ad.chip.receiveFrame(frame);
  assert.equal(ad.readSock16(0, 0x26) !== 0, ok);
  assert.equal(ad.chip.stats.rxDroppedFiltered, ok ? 0 : 1);
  return ok ? 1 : 0;
}

for (const Adapter of ADAPTERS) {
  const name = new Adapter().name;

  test(`${name}: without MFEN every frame passes, whatever MMB/MIP6B/policy say`, () => {
    for (const [mmb, mip6b] of COMBOS) {
      for (const policy of ['pass', 'block']) {
        for (const [kind, frame] of Object.entries(FRAMES)) {
          assert.equal(accepted(Adapter, { mfen: false, mmb, mip6b, policy }, frame), 1,
            `${kind} mmb=${mmb} mip6b=${mip6b} policy=${policy}`);
        }
      }
    }
  });

  for (const [policy, table] of [['pass', MFEN_PASS], ['block', MFEN_BLOCK]]) {
    test(`${name}: MFEN set, multicastPolicy '${policy}': the matrix`, () => {
      for (const [kind, expected] of Object.entries(table)) {
        COMBOS.forEach(([mmb, mip6b], i) => {
          assert.equal(accepted(Adapter, { mfen: true, mmb, mip6b, policy }, FRAMES[kind]), expected[i],
            `${kind} mmb=${mmb} mip6b=${mip6b}`);
        });
      }
    });
  }

  test(`${name}: broadcast block bit (BCASTB / MBBLK) under MFEN`, () => {
    assert.equal(accepted(Adapter, { mfen: true, bcastb: true, policy: 'pass' }, FRAMES.broadcast), 0);
    assert.equal(accepted(Adapter, { mfen: true, bcastb: true, policy: 'pass' }, FRAMES.own), 1);
  });

  test(`${name}: the filter reads SHAR and Sn_MR as they are now (MFEN set after OPEN works)`, () => {
    const ad = new Adapter();
    openMacraw(ad);
    ad.setFilter(0, { mfen: true }); // as wiznet5k_netif_init does, after socket()
    assert.equal(ad.chip.receiveFrame(FRAMES.own), false); // SHAR still 00:00:00:00:00:00
    ad.writeCommonBuf(ad.SHAR, OWN_MAC);
    assert.equal(ad.chip.receiveFrame(FRAMES.own), true);
  });
}

test('frames shorter than an Ethernet header or longer than 1514 bytes are dropped as invalid', () => {
  for (const Adapter of ADAPTERS) {
    const ad = new Adapter();
    openMacraw(ad);
    assert.equal(ad.chip.receiveFrame(new Uint8Array(13)), false);
    assert.equal(ad.chip.receiveFrame(new Uint8Array(1515)), false);
    assert.equal(ad.chip.stats.rxDroppedInvalid, 2);
    assert.equal(ad.chip.receiveFrame(makeFrame(OWN_MAC, 1514)), true);
  }
});
