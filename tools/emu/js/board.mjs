// One emulated board: the RP2040 running the firmware, its flash, its WIZnet chip and its USB
// serial. A reset (machine.reset(), the watchdog, the RUN pin, power) starts a fresh RP2040 as
// the silicon does; the flash and the WIZnet chip (a separate chip on the board) stay.
import { RP2040 } from 'rp2040js';
import { SimulationClock } from './internals.mjs';
import { BasePeripheral } from 'rp2040js';
import { FlashSSI, QSPIIO } from './flash.mjs';
import { USBSerial } from './usbserial.mjs';
import { ChipWiring } from './wiring.mjs';

const FLASH_XIP = 0x10000000;
const CYCLE_NS = 8; // 125 MHz: rp2040js counts cycles at the SDK's default clk_sys
// Watchdog REASON bits (RP2040 datasheet 4.7.6): TIMER = the counter ran out, FORCE = software.
const REASON_TIMER = 1;
const REASON_FORCE = 2;
// VREG_AND_CHIP_RESET CHIP_RESET (datasheet 2.10.8): which reset the chip came out of.
const CHIP_RESET = 0x08;
const HAD_POR = 1 << 8;
const HAD_RUN = 1 << 16;

/** Registers that read back what was written (with fixed initial values). */
class RegisterFile extends BasePeripheral {
  constructor(rp2040, name, initial) {
    super(rp2040, name);
    this.regs = new Map(Object.entries(initial).map(([k, v]) => [Number(k), v]));
  }
  readUint32(offset) {
    return this.regs.get(offset) ?? 0;
  }
  writeUint32(offset, value) {
    this.regs.set(offset, value >>> 0);
  }
}

/** rp2040js's logger writes to stdout; ours goes to stderr, once per distinct message. */
class QuietLogger {
  constructor(verbose) {
    this.verbose = verbose;
    this.seen = new Set();
  }
  note(level, component, message) {
    const key = `${component}: ${message.replace(/0x[0-9a-f]+/g, 'N')}`;
    if (this.seen.has(key) && !this.verbose) return;
    this.seen.add(key);
    process.stderr.write(`emu: ${level} [${component}] ${message}\n`);
  }
  debug() {}
  info(c, m) { if (this.verbose) this.note('info', c, m); }
  warn(c, m) { if (this.verbose) this.note('warn', c, m); }
  error(c, m) { this.note('error', c, m); }
}

export class Board {
  constructor({ bootrom, flashChip, chip, firmwareFaults = {}, verbose = false,
                onSerial, onFrame, onBoot }) {
    this.bootrom = bootrom;
    this.flashChip = flashChip;
    this.chip = chip;
    this.faults = firmwareFaults;
    this.logger = new QuietLogger(verbose);
    this.onSerial = onSerial;
    this.onFrame = onFrame;
    this.onBoot = onBoot;
    this.vbase = 0; // virtual ns of the boots before this one
    this.boots = 0;
    this.dtr = false;
    this.bootsel = false;
    this.resetRequest = null;
    this.stallNs = 0;
    this.unexpectedBreak = null;
    this.halted = false;
    this.cycles = 0;
    this.sampler = null;
    if (chip) chip.onTransmit = (frame) => this.onFrame(this.now(), frame);
  }

  now() {
    return this.vbase + this.clock.nanos;
  }

  powerOn(cause = 'power-on') {
    const scratch = this.mcu ? this.mcu.peripherals[0x40058].scratchData.slice() : null;
    if (this.mcu) this.vbase += this.clock.nanos;
    const clock = new SimulationClock();
    const mcu = new RP2040(clock);
    mcu.logger = this.logger;
    mcu.loadBootrom(this.bootrom); // (it also blanks rp2040js's flash array: load ours after)
    this.flashChip.loadInto(mcu);
    const ssi = new FlashSSI(mcu, 'SSI', this.flashChip);
    mcu.peripherals[0x18000] = ssi;
    mcu.peripherals[0x40018] = new QSPIIO(mcu, 'IO_QSPI_BASE', (low) => ssi.select(low));
    mcu.peripherals[0x40064] = new RegisterFile(mcu, 'VREG_AND_CHIP_RESET_BASE', {
      [CHIP_RESET]: cause === 'power-on' ? HAD_POR : cause === 'run-pin' ? HAD_RUN : 0,
    });
    const watchdog = mcu.peripherals[0x40058];
    // The watchdog's scratch registers and reason survive its own reset (datasheet 4.7.2).
    if (cause === 'watchdog') watchdog.reason = REASON_TIMER;
    if (cause === 'soft') watchdog.reason = REASON_FORCE;
    if (scratch && (cause === 'watchdog' || cause === 'soft')) watchdog.scratchData.set(scratch);
    watchdog.onWatchdogTrigger = () => {
      this.resetRequest = watchdog.reason === REASON_FORCE ? 'soft' : 'watchdog';
      // The chip resets now: stop the counter, or rp2040js re-arms its alarm at the same
      // instant (a decrementing timer at 0 wraps to a period of 0) and never returns.
      watchdog.alarm.enable = false;
      watchdog.timer.enable = false;
    };
    mcu.onBreak = (code) => {
      const stall = this.flashChip.onBreak(code, mcu);
      if (stall >= 0) this.stallNs += stall;
      else this.unexpectedBreak = code;
    };
    this.wiring = new ChipWiring(mcu, this.chip, this.faults);
    this.usb = new USBSerial(mcu.usbCtrl, { clock, dtr: this.dtr, onData: (b) => this.onSerial(b) });
    // QSPI_SS's pad out of reset (RP2040 datasheet 2.19.6.4: 0x5a, input enabled, pull-up;
    // rp2040js starts every pad with its input off), and BOOTSEL, which pulls QSPI_SS low
    // while pressed: rp2.bootsel_button() reads it.
    mcu.qspi[1].padValue = 0x5a;
    mcu.qspi[1].setInputValue(!this.bootsel);
    mcu.core.PC = FLASH_XIP; // boot2 at the start of flash, as the bootrom would run it
    this.mcu = mcu;
    this.clock = clock;
    this.boots++;
    this.resetRequest = null;
    this.halted = false;
    if (this.sampler) this.startSampler(this.sampler.intervalNs);
    this.onBoot(cause, this.boots);
  }

  setDTR(on) {
    this.dtr = on;
    this.usb.setDTR(on);
  }

  setBootsel(pressed) {
    this.bootsel = pressed;
    this.mcu.qspi[1].setInputValue(!pressed);
  }

  setFaults(faults) {
    this.faults = faults;
    this.wiring.setFaults(faults);
    if (this.chip) this.chip.faults.stuckCommand = !!faults.stuckCommand;
  }

  /** Run until virtual time `limitNs` or `maxInstructions`, whichever comes first.
   *  Returns true when it reached the limit (nothing left to do before it). */
  run(limitNs, maxInstructions) {
    const { mcu } = this;
    const core = mcu.core;
    let clock = this.clock;
    let limit = limitNs - this.vbase;
    for (let i = 0; i < maxInstructions; i++) {
      if (this.stallNs > 0) {
        // A flash erase/program: the CPU waits with interrupts off, time goes on.
        const dt = Math.min(this.stallNs, limit - clock.nanos);
        if (dt <= 0) return true;
        clock.tick(dt);
        this.stallNs -= dt;
        continue;
      }
      if (core.waiting || this.halted) {
        // Asleep (WFE/WFI) or stopped at a breakpoint (on a board without a debugger that is a
        // HardFault loop): time runs on, so the timers and the watchdog still fire.
        const next = clock.nextAlarm ? clock.nanosToNextAlarm : Infinity;
        if (next <= 0) {
          clock.tick(0); // an alarm due now (a frame just scheduled, say): fire it
          continue;
        }
        const dt = Math.min(next, limit - clock.nanos);
        if (dt <= 0) return true;
        clock.tick(dt);
        if ((core.waiting || this.halted) && clock.nanos >= limit) return true;
        continue;
      }
      if (clock.nanos >= limit) return true;
      const cycles = core.executeInstruction();
      this.cycles += cycles;
      clock.tick(cycles * CYCLE_NS);
      if (this.resetRequest) {
        this.powerOn(this.resetRequest);
        clock = this.clock;
        limit = limitNs - this.vbase;
      }
    }
    return false;
  }

  /** PC sampling for the profile: every intervalNs of virtual time, count the PC. */
  startSampler(intervalNs) {
    const counts = this.sampler ? this.sampler.counts : new Map();
    const alarm = this.clock.createAlarm(() => {
      const pc = this.mcu.core.waiting ? 0 : this.mcu.core.PC >>> 0; // 0: asleep in WFE/WFI
      counts.set(pc, (counts.get(pc) || 0) + 1);
      alarm.schedule(intervalNs);
    });
    alarm.schedule(intervalNs);
    this.sampler = { intervalNs, counts, alarm };
  }

  stopSampler() {
    if (!this.sampler) return new Map();
    this.sampler.alarm.cancel();
    const { counts } = this.sampler;
    this.sampler = null;
    return counts;
  }
}

export { CYCLE_NS };
