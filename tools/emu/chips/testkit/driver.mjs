// The register traffic of MicroPython v1.28.0's WIZNET5K driver in lwIP/MACRAW mode
// (extmod/network_wiznet5k.c with lib/wiznet5k @0803fc5: wizchip_conf.c, socket.c,
// W5100S/w5100s.c, W5500/w5500.c), re-expressed in JS over the testkit adapters so a model
// can be checked against the same sequence of SPI transactions the firmware produces.
// Only the order and content of the register accesses matter here, not the C structure.

const W5100S = 'W5100S';

export class MicroPythonDriver {
  constructor(ad) {
    this.ad = ad;
    this.w5100s = ad.name === W5100S;
    this.frames = [];
  }

  get chip() { return this.ad.chip; }

  // network.WIZNET5K(...).active(True)
  activate(mac) {
    const { ad, chip } = this;
    // mp_hal_pin_low(rst); delay 1 ms; mp_hal_pin_high(rst); delay 160 ms
    chip.setReset(true);
    chip.setReset(false);
    // wiznet5k_init(): ctlwizchip(CW_INIT_WIZCHIP, sn_size) -> wizchip_init(tx, rx)
    this.wizchipSwReset();
    if (this.w5100s) {
      // {8,0,0,0} for TX then RX: j = log2(size) (0 for 0), setSn_TXBUF_SIZE = TMSR RMW.
      for (const reg of [0x1b, 0x1a]) {
        for (let i = 0; i < 4; i++) {
          const j = i === 0 ? 3 : 0;
          const v = ad.readCommon(reg);
          ad.writeCommon(reg, (v & ~(0x03 << (2 * i))) | (j << (2 * i)));
        }
      }
    } else {
      // {16,0,...} for TX then RX: setSn_TXBUF_SIZE(i, n) for all 8 sockets.
      for (let i = 0; i < 8; i++) ad.writeSock(i, 0x1f, i === 0 ? 16 : 0);
      for (let i = 0; i < 8; i++) ad.writeSock(i, 0x1e, i === 0 ? 16 : 0);
    }
    // use_interrupt (INTN pin 21 on both boards): wizchip_setinterruptmask(IK_SOCK_0)
    if (this.w5100s) {
      ad.writeCommon(0x16, 0x01); // IMR = S0 (the socket mask is folded into IMR)
    } else {
      ad.writeCommon(0x16, 0x00); // IMR
      ad.writeCommon(0x18, 0x01); // SIMR
    }
    ad.writeSock(0, 0x2c, 0x04); // setSn_IMR(0, Sn_IR_RECV)
    if (this.w5100s) ad.writeCommon(0x30, ad.readCommon(0x30) | 0x40); // MR2 |= G_IEN
    // wiznet5k_lwip_init -> netif_add -> wiznet5k_netif_init
    ad.readCommonBuf(0x09, 6); // getSHAR into netif->hwaddr
    this.socketMacraw();
    // setSn_MR(0, getSn_MR(0) | Sn_MR_MFEN); LWIP_IPV6 = 1 on rp2, so no MIP6B
    ad.writeSock(0, 0x00, ad.readSock(0, 0x00) | (this.w5100s ? 0x40 : 0x80));
    // back in active(): getSHAR; all zero -> setSHAR(mp_hal_get_mac(ETH0))
    const shar = ad.readCommonBuf(0x09, 6);
    if (shar.every((b) => b === 0)) ad.writeCommonBuf(0x09, mac);
  }

  wizchipSwReset() {
    const { ad } = this;
    const mac = Uint8Array.from(ad.readCommonBuf(0x09, 6));
    const gw = Uint8Array.from(ad.readCommonBuf(0x01, 4));
    const sn = Uint8Array.from(ad.readCommonBuf(0x05, 4));
    const sip = Uint8Array.from(ad.readCommonBuf(0x0f, 4));
    ad.writeCommon(0x00, 0x80); // setMR(MR_RST)
    ad.readCommon(0x00); // getMR() "for delay"
    ad.writeCommonBuf(0x09, mac);
    ad.writeCommonBuf(0x01, gw);
    ad.writeCommonBuf(0x05, sn);
    ad.writeCommonBuf(0x0f, sip);
  }

  /** socket(0, Sn_MR_MACRAW, 0, 0): close(0), Sn_MR, Sn_PORT, OPEN, wait. */
  socketMacraw() {
    const { ad } = this;
    ad.writeSock(0, 0x01, 0x10); // close(): CLOSE
    while (ad.readSock(0, 0x01)) { /* while(getSn_CR(sn)) */ }
    ad.writeSock(0, 0x02, 0xff); // clear all interrupts of the socket
    while (ad.readSock(0, 0x03) !== 0x00) { /* wait SOCK_CLOSED */ }
    ad.writeSock(0, 0x00, 0x04); // setSn_MR(sn, MACRAW | (flag & 0xF0))
    ad.writeSock(0, 0x04, 0xc0); // setSn_PORT(sn, sock_any_port++) (0xC000 first)
    ad.writeSock(0, 0x05, 0x00);
    ad.writeSock(0, 0x01, 0x01); // OPEN
    while (ad.readSock(0, 0x01)) { /* wait */ }
    let spins = 0;
    while (ad.readSock(0, 0x03) === 0x00) {
      if (++spins > 1000) throw new Error('socket() would hang: Sn_SR stays SOCK_CLOSED');
    }
  }

  /** wizphy_getphylink() == PHY_LINK_ON */
  linkUp() {
    return this.w5100s ? (this.ad.readCommon(0x3c) & 0x01) === 1 : (this.ad.readCommon(0x2e) & 0x01) === 1;
  }

  /** getSn_TX_FSR / getSn_RX_RSR: read until two reads agree (re-read only when non-zero). */
  size16(off) {
    const { ad } = this;
    let val = 0;
    let val1;
    do {
      val1 = (ad.readSock(0, off) << 8) | ad.readSock(0, off + 1);
      if (val1 !== 0) val = (ad.readSock(0, off) << 8) | ad.readSock(0, off + 1);
    } while (val !== val1);
    return val;
  }

  ptr16(off) { return (this.ad.readSock(0, off) << 8) | this.ad.readSock(0, off + 1); }

  wizRecvData(len) {
    const { ad } = this;
    const ptr = this.ptr16(0x28);
    const data = ad.readRx(0, ptr, len);
    ad.writeSock16(0, 0x28, (ptr + len) & 0xffff);
    return data;
  }

  recvCommand() {
    this.ad.writeSock(0, 0x01, 0x40);
    while (this.ad.readSock(0, 0x01)) { /* wait */ }
  }

  /** wiznet5k_recv_ethernet(): one frame or null. */
  recvEthernet() {
    const { ad } = this;
    if (this.size16(0x26) === 0) return null;
    // recvfrom(0, buf, 1514, ...)
    if ((ad.readSock(0, 0x00) & 0x0f) !== 0x04) throw new Error('Sn_MR is not MACRAW');
    if (this.size16(0x26) === 0) return null;
    if (ad.readSock(0, 0x03) === 0x00) throw new Error('SOCKERR_SOCKCLOSED');
    const head = this.wizRecvData(2);
    this.recvCommand();
    const remained = ((head[0] << 8) | head[1]) - 2;
    if (remained > 1514) throw new Error(`SOCKFATAL_PACKLEN (${remained})`);
    const data = this.wizRecvData(remained);
    this.recvCommand();
    return data;
  }

  /** wiznet5k_poll(): drain, then clear the socket interrupt (and Sn_IR on the W5100S). */
  poll() {
    const { ad } = this;
    const got = [];
    for (let f; (f = this.recvEthernet()) !== null;) got.push(f);
    if (this.w5100s) {
      ad.writeCommon(0x15, (0x01 | 0x10) & 0xe0); // wizchip_clrinterrupt: setIR(ir & 0xE0)
      ad.writeSock(0, 0x02, 0x04); // "must write to the Sn_IR register to reset the IRQ signal"
    } else {
      ad.writeCommon(0x15, 0x00); // setIR(ir & 0xF0) with ir = 0
      ad.writeSock(0, 0x02, 0xff & 0x1f); // setSn_IR(0, 0xff) for each socket bit in sir
    }
    this.frames.push(...got);
    return got;
  }

  /** wiznet5k_send_ethernet() -> sendto(0, buf, len, {1,1,1,1}, 11). */
  sendEthernet(frame) {
    const { ad } = this;
    if ((ad.readSock(0, 0x00) & 0x0f) !== 0x04) throw new Error('SOCKERR_SOCKMODE');
    const sr = ad.readSock(0, 0x03);
    if (sr !== 0x42) throw new Error('SOCKERR_SOCKSTATUS');
    ad.writeSockBuf(0, 0x0c, [1, 1, 1, 1]); // setSn_DIPR (dummy address)
    ad.writeSock16(0, 0x10, 11); // setSn_DPORT
    const max = ad.txMax(0);
    const len = Math.min(frame.length, max);
    let spins = 0;
    for (;;) {
      const free = this.size16(0x20);
      if (ad.readSock(0, 0x03) === 0x00) throw new Error('SOCKERR_SOCKCLOSED');
      if (len <= free) break;
      if (++spins > 1000) throw new Error('sendto() would hang: no free TX space');
    }
    // wiz_send_data
    const ptr = this.ptr16(0x24);
    ad.writeTx(0, ptr, frame.subarray(0, len));
    ad.writeSock16(0, 0x24, (ptr + len) & 0xffff);
    // W5100S ARP errata (#4/#5): with SIPR = 0, SUBR is zeroed for the send and restored.
    let savedSubr = null;
    if (this.w5100s) {
      const sip = ad.readCommonBuf(0x0f, 4);
      if (sip.every((b) => b === 0)) {
        savedSubr = Uint8Array.from(ad.readCommonBuf(0x05, 4));
        ad.writeCommonBuf(0x05, [0, 0, 0, 0]);
      }
    }
    ad.writeSock(0, 0x01, 0x20); // SEND
    spins = 0;
    while (ad.readSock(0, 0x01)) {
      if (++spins > 1000) throw new Error('sendto() would hang: Sn_CR never clears');
    }
    spins = 0;
    for (;;) {
      const ir = ad.readSock(0, 0x02);
      if (ir & 0x10) { ad.writeSock(0, 0x02, 0x10); break; }
      if (ir & 0x08) { ad.writeSock(0, 0x02, 0x08); throw new Error('SOCKERR_TIMEOUT'); }
      if (++spins > 1000) throw new Error('sendto() would hang: no SEND_OK');
    }
    if (savedSubr && savedSubr.some((b) => b !== 0)) ad.writeCommonBuf(0x05, savedSubr);
    return len;
  }
}
