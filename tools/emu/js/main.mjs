// The emulated board's process. Started by tools/emu (Python), which owns the host side: the
// TAP device on the LAN, the serial port (a pty) and the console. They talk over a socket (fd 3, or --fd) in
// messages of [type u8][length u32 LE][payload]; see tools/emu/link.py for the other end.
//
// Time: `realtime` never lets the board's clock run ahead of the wall clock (it may fall
// behind: the emulator is slower than the chip); `virtual` runs as fast as it can up to a
// horizon the host moves, and delivers frames the host scheduled at exact virtual times, so
// measurements do not depend on the host's load.
import net from 'node:net';
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadUF2 } from './uf2.mjs';
import { FlashChip, patchBootrom } from './flash.mjs';
import { Board } from './board.mjs';

export const MSG = Object.freeze({
  ETH: 1, SERIAL: 2, CTRL: 3, ETH_AT: 4, ETH_SEEN: 5, // host -> board
  ETH_OUT: 0x81, SERIAL_OUT: 0x82, EVENT: 0x83, // board -> host
});

const { values: opt } = parseArgs({
  options: {
    firmware: { type: 'string' },
    flash: { type: 'string' },
    'flash-size': { type: 'string', default: String(2 * 1024 * 1024) },
    bootrom: { type: 'string' },
    chip: { type: 'string', default: 'w5100s' },
    uid: { type: 'string', default: 'e661410403000001' },
    timing: { type: 'string', default: 'realtime' },
    dtr: { type: 'boolean', default: false },
    link: { type: 'boolean', default: true },
    verbose: { type: 'boolean', default: false },
    fd: { type: 'string', default: '3' },
  },
});

function fail(message) {
  process.stderr.write(`emu: ${message}\n`);
  process.exit(2);
}

if (!opt.bootrom || !opt.flash) fail('--bootrom and --flash are required');
if (!['realtime', 'virtual'].includes(opt.timing)) fail(`--timing ${opt.timing}: realtime or virtual`);
const flashSize = Number(opt['flash-size']);
if (!existsSync(opt.flash)) writeFileSync(opt.flash, Buffer.alloc(flashSize, 0xff));
const flashChip = new FlashChip({ path: opt.flash, size: flashSize, uniqueId: Buffer.from(opt.uid, 'hex') });
if (opt.firmware) {
  // As the bootloader does with a UF2 copied onto the board: its blocks land, the rest stays.
  loadUF2(new Uint8Array(readFileSync(opt.firmware)), flashChip.image);
  flashChip.persist(0, flashSize);
}
const romBytes = readFileSync(opt.bootrom);
const bootrom = new Uint32Array(romBytes.buffer.slice(romBytes.byteOffset, romBytes.byteOffset + romBytes.length));
patchBootrom(bootrom);

const chip = opt.chip === 'none' ? null : (await import('../chips/index.mjs')).createChip(opt.chip);
if (chip) chip.setLink(opt.link);

// -- the link to the host ---------------------------------------------------------------------
const link = new net.Socket({ fd: Number(opt.fd), readable: true, writable: true });
let outQueue = [];
function send(type, payload) {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32LE(payload.length, 1);
  outQueue.push(head, payload);
}
function event(obj) {
  send(MSG.EVENT, Buffer.from(JSON.stringify(obj)));
}
function flush() {
  if (!outQueue.length) return;
  link.write(Buffer.concat(outQueue));
  outQueue = [];
}

const board = new Board({
  bootrom, flashChip, chip, verbose: opt.verbose,
  onSerial: (bytes) => send(MSG.SERIAL_OUT, Buffer.from(bytes)),
  onFrame: (vns, frame) => {
    const p = Buffer.alloc(8 + frame.length);
    p.writeDoubleLE(vns, 0);
    p.set(frame, 8);
    send(MSG.ETH_OUT, p);
  },
  onBoot: (cause, boots) => {
    event({ event: 'boot', cause, boots, vns: board.now() });
    rearmSchedule();
  },
});
board.dtr = opt.dtr;

// Frames the host scheduled at virtual times (ETH_AT), delivered by an alarm on the board's clock.
const schedule = [];
let scheduleHead = 0;
let scheduleAlarm = null;
function rearmSchedule() {
  scheduleAlarm = board.clock.createAlarm(deliverDue);
  armNext();
}
function armNext() {
  if (scheduleHead >= schedule.length) return;
  scheduleAlarm.schedule(Math.max(0, schedule[scheduleHead].vns - board.now()));
}
function deliverDue() {
  const now = board.now();
  while (scheduleHead < schedule.length && schedule[scheduleHead].vns <= now) {
    receive(schedule[scheduleHead++].frame);
  }
  if (scheduleHead > 4096 && scheduleHead * 2 > schedule.length) {
    schedule.splice(0, scheduleHead);
    scheduleHead = 0;
  }
  armNext();
}
let droppedNoChip = 0;
function receive(frame) {
  if (chip) chip.receiveFrame(frame);
  else droppedNoChip++;
}

let horizon = 0; // virtual mode: how far the board may run
let quitting = false;
let horizonReported = true;
const wallStart = performance.now();
// CLOCK_MONOTONIC, as the host's time.monotonic_ns(): realtime mode maps it onto virtual time.
const monoStart = process.hrtime.bigint();
const monoNow = () => Number(process.hrtime.bigint() - monoStart);

function status() {
  return {
    event: 'status', vns: board.now(), wall_ms: performance.now() - wallStart, boots: board.boots,
    cycles: board.cycles, timing: opt.timing, horizon, dtr: board.dtr,
    spi_bytes: board.wiring.bytes, spi_busy_ns: board.wiring.busNanos,
    flash: { erases: flashChip.erases, programs: flashChip.programs },
    chip: chip ? chip.stats : null, dropped_no_chip: droppedNoChip,
    scheduled_left: schedule.length - scheduleHead,
    serial_pending: board.usb.pendingBytes,
  };
}

function control(cmd) {
  switch (cmd.cmd) {
    case 'link': if (chip) chip.setLink(!!cmd.up); break;
    case 'dtr': board.setDTR(!!cmd.on); break;
    case 'bootsel': board.setBootsel(!!cmd.pressed); break;
    case 'policy': if (chip) chip.multicastPolicy = cmd.multicast; break;
    case 'faults': board.setFaults(cmd.faults || {}); break;
    case 'power': board.powerOn(cmd.cause || 'power-on'); break;
    case 'horizon':
      horizon = cmd.ns;
      horizonReported = false;
      break;
    case 'status': event(status()); break;
    case 'profile':
      if (cmd.on) board.startSampler(cmd.interval_ns || 10000);
      else event({ event: 'profile', samples: Object.fromEntries(board.stopSampler()) });
      break;
    case 'quit': quitting = true; break;
    default: event({ event: 'error', message: `unknown command ${JSON.stringify(cmd)}` });
  }
}

let inBuf = Buffer.alloc(0);
link.on('data', (chunk) => {
  inBuf = inBuf.length ? Buffer.concat([inBuf, chunk]) : chunk;
  let off = 0;
  while (inBuf.length - off >= 5) {
    const type = inBuf[off];
    const len = inBuf.readUInt32LE(off + 1);
    if (inBuf.length - off - 5 < len) break;
    const payload = inBuf.subarray(off + 5, off + 5 + len);
    off += 5 + len;
    if (type === MSG.ETH) receive(new Uint8Array(payload));
    else if (type === MSG.SERIAL) board.usb.write(new Uint8Array(payload));
    else if (type === MSG.CTRL) control(JSON.parse(payload.toString()));
    else if (type === MSG.ETH_AT || type === MSG.ETH_SEEN) {
      // ETH_SEEN: a frame the host read off the wire at CLOCK_MONOTONIC time t; the board gets
      // it at the same point of its own clock (later if its clock already passed it), so the
      // spacing of frames survives the emulator running behind the wall clock.
      let vns = payload.readDoubleLE(0);
      if (type === MSG.ETH_SEEN) vns = Math.max(vns - Number(monoStart), board.now());
      const item = { vns, frame: new Uint8Array(payload.subarray(8)) };
      const last = schedule[schedule.length - 1];
      schedule.push(item);
      if (last && last.vns > vns) {
        const rest = schedule.splice(scheduleHead).sort((a, b) => a.vns - b.vns);
        schedule.push(...rest);
      }
      if (schedule.length - scheduleHead === 1 || schedule[scheduleHead] === item) armNext();
    }
  }
  inBuf = off === inBuf.length ? Buffer.alloc(0) : inBuf.subarray(off);
  kick();
});
link.on('end', () => { quitting = true; kick(); });
link.on('error', () => { quitting = true; kick(); });

// -- the run loop -----------------------------------------------------------------------------
const SLICE_MS = 8;
const BATCH = 20000;
let timer = null;
let pending = false;

function kick() {
  if (timer) { clearTimeout(timer); timer = null; }
  if (!pending) { pending = true; setImmediate(loop); }
}

function loop() {
  pending = false;
  if (quitting) {
    flush();
    link.end(() => process.exit(0));
    return;
  }
  const t0 = performance.now();
  let reached = false;
  while (performance.now() - t0 < SLICE_MS) {
    const limit = opt.timing === 'realtime' ? monoNow() : horizon;
    reached = board.run(limit, BATCH);
    if (board.unexpectedBreak !== null) {
      const core = board.mcu.core;
      const sp = core.SP >>> 0;
      const stack = [];
      for (let i = 0; i < 64; i++) stack.push((board.mcu.readUint32(sp + 4 * i) >>> 0).toString(16));
      event({ event: 'halted', message: `breakpoint ${board.unexpectedBreak} at 0x${(core.PC >>> 0).toString(16)}`,
        lr: (core.LR >>> 0).toString(16), stack });
      board.unexpectedBreak = null;
      board.halted = true;
    }
    if (reached) break;
  }
  if (reached && opt.timing === 'virtual' && !horizonReported) {
    horizonReported = true;
    event({ event: 'horizon', vns: board.now() });
  }
  flush();
  if (!reached) { pending = true; setImmediate(loop); return; }
  // Caught up with the wall clock (or the horizon): wait for time to pass or the host to speak.
  if (opt.timing === 'realtime') timer = setTimeout(() => { timer = null; kick(); }, 1);
}

board.powerOn('power-on');
event({ event: 'ready', chip: chip ? chip.name : null, timing: opt.timing });
kick();
