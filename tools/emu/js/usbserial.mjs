// The board's USB serial (MicroPython's REPL), seen from the host side of the cable.
// rp2040js's USBCDC enumerates the device; two things are changed so that it behaves as a PC's
// cdc_acm driver does:
//  - an OUT transfer (host -> board) completes only when there are bytes to send. rp2040js
//    answers an armed OUT endpoint at once with an empty packet, which keeps the CPU busy with
//    USB interrupts every 10 us while idle; a real host just NAKs until it has data.
//  - the host sends a Start of Frame every millisecond (rp2040js does so only in host mode):
//    TinyUSB and MicroPython use SOF interrupts, e.g. to flush what was printed before the
//    port was opened once DTR comes.
//  - DTR follows whether a program on the host has the port open (a closed port drops DTR),
//    and, like Linux's cdc_acm, the host only reads the board's IN endpoint while the port is
//    open: until then an IN transfer waits (NAK). MicroPython only waits for the host while
//    DTR is set and otherwise overwrites its transmit FIFO, so what a board prints before the
//    port is opened is mostly lost, as on a board (the first packet and the FIFO's last bytes
//    come through when it is opened).
import { USBCDC } from 'rp2040js';

const CDC_DTR = 1;
const CDC_RTS = 2;
const PENDING_MAX = 1 << 20;
const SOF_RD = 0x48;
const INTR_DEV_SOF = 1 << 17; // cleared by reading SOF_RD (RP2040 datasheet 4.1.4)
const FRAME_NS = 1e6;
const EP0_IN_BUFFER_CONTROL = 0x80; // DPRAM: endpoint n IN at 0x80 + 8n, OUT at 0x84 + 8n
const BUF_AVAILABLE = 1 << 10;

export class USBSerial {
  constructor(usbCtrl, { clock, onData, dtr }) {
    this.cdc = new USBCDC(usbCtrl);
    this.usb = usbCtrl;
    this.pending = []; // Uint8Arrays from the host, not yet taken by the board
    this.pendingBytes = 0;
    this.armed = null; // {endpoint, size}: the board is waiting for OUT data
    this.connected = false;
    this.dtr = dtr;
    this.cdc.onSerialData = onData;
    // The line state goes out as its own control transfer a little after the previous one,
    // as a host does (two setup packets at once would overwrite each other).
    this.lineStateAlarm = clock.createAlarm(() => {
      this.cdc.cdcSetControlLineState(this.dtr ? CDC_DTR | CDC_RTS : 0);
    });
    this.cdc.onDeviceConnected = () => {
      this.connected = true;
      this.applyLineState();
      this.sof.schedule(FRAME_NS);
    };
    this.sof = clock.createAlarm(() => {
      usbCtrl.sofFrameNumber = (usbCtrl.sofFrameNumber + 1) & 0x7ff;
      usbCtrl.intRaw |= INTR_DEV_SOF;
      usbCtrl.checkInterrupts();
      this.sof.schedule(FRAME_NS);
    });
    this.heldIn = []; // IN buffers the board offered while the host was not reading
    const dpramUpdated = usbCtrl.DPRAMUpdated.bind(usbCtrl);
    this.dpramUpdated = dpramUpdated;
    usbCtrl.DPRAMUpdated = (offset, value) => {
      const ep = this.cdc.inEndpoint;
      if (!this.dtr && ep > 0 && offset === EP0_IN_BUFFER_CONTROL + 8 * ep
          && value & BUF_AVAILABLE) {
        this.heldIn.push(offset);
        return;
      }
      dpramUpdated(offset, value);
    };
    const readRegister = usbCtrl.readUint32.bind(usbCtrl);
    usbCtrl.readUint32 = (offset) => {
      const value = readRegister(offset);
      if (offset === SOF_RD && usbCtrl.intRaw & INTR_DEV_SOF) {
        usbCtrl.intRaw &= ~INTR_DEV_SOF;
        usbCtrl.checkInterrupts();
      }
      return value;
    };
    usbCtrl.onEndpointRead = (endpoint, size) => {
      if (endpoint !== this.cdc.outEndpoint) return; // (as rp2040js's USBCDC: EP0 is its own)
      this.armed = { endpoint, size };
      this.feed();
    };
  }

  /** Bytes typed on the host side. Returns false when the board is too far behind. */
  write(bytes) {
    if (this.pendingBytes + bytes.length > PENDING_MAX) return false;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.feed();
    return true;
  }

  feed() {
    if (!this.armed || !this.pendingBytes) return;
    const { endpoint, size } = this.armed;
    const out = new Uint8Array(Math.min(size, this.pendingBytes));
    let n = 0;
    while (n < out.length) {
      const head = this.pending[0];
      const take = Math.min(head.length, out.length - n);
      out.set(head.subarray(0, take), n);
      n += take;
      if (take === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(take);
    }
    this.pendingBytes -= n;
    this.armed = null;
    this.usb.endpointReadDone(endpoint, out);
  }

  setDTR(on) {
    this.dtr = on;
    this.applyLineState();
    if (on) {
      // The host reads again: the IN transfers that waited go now.
      const held = this.heldIn.splice(0);
      for (const offset of held) {
        this.dpramUpdated(offset, this.usb.rp2040.usbDPRAMView.getUint32(offset, true));
      }
    }
  }

  applyLineState() {
    if (this.connected) this.lineStateAlarm.schedule(1e6);
  }
}
