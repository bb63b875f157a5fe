// The WIZnet chip on the board's pins: SPI0 (SCK 18, MOSI 19, MISO 16), CS 17, RST 20,
// INTN 21 on both the W5100S-EVB-Pico and the W5500-EVB-Pico. The chip sees an SPI byte only
// when its CS is low and the three SPI pins carry the SPI function; anything else (another
// bus, other pins, no chip) leaves MISO floating, which the pad's pull resistor decides.
import { GPIOPinState } from 'rp2040js';

const FUNC_SPI = 1;
export const BOARD_PINS = Object.freeze({ spi: 0, sck: 18, mosi: 19, miso: 16, cs: 17, rst: 20, intn: 21 });

export class ChipWiring {
  /** faults: {absent, heldInReset, misoStuckHigh} on the wires; {stuckCommand} lives on the
   *  chip, and with {untilReset} it is a wedge that the next RST pulse clears (a chip upset by
   *  a glitch), else a defect that stays. */
  constructor(rp2040, chip, faults = {}) {
    this.rp2040 = rp2040;
    this.chip = chip;
    this.faults = faults;
    this.pins = BOARD_PINS;
    this.selected = false;
    this.resetLow = false;
    this.external = new Map(); // pin -> level driven from outside the RP2040
    this.bytes = 0;
    this.busNanos = 0; // time the SPI bus spent shifting bytes (for the profile)
    const { gpio } = rp2040;
    for (const pin of gpio) {
      // A pin driven as an output reads back its own level (the driver polls CS through
      // mp_hal_pin_read before it reads the chip from the INTN interrupt).
      pin.addListener(() => this.refreshInput(pin));
    }
    gpio[this.pins.cs].addListener((state) => this.onChipSelect(state === GPIOPinState.Low));
    gpio[this.pins.rst].addListener((state) => this.onResetPin(state === GPIOPinState.Low));
    if (chip) {
      chip.onInterrupt = (level) => this.drive(this.pins.intn, level);
      this.drive(this.pins.intn, chip.intn);
    } else {
      this.drive(this.pins.intn, true); // the board's pull-up on INTN
    }
    this.applyReset();
    this.spi = rp2040.spi[this.pins.spi];
    this.pendingMiso = 0;
    this.spiDone = rp2040.clock.createAlarm(() => this.spi.completeTransmit(this.pendingMiso));
    this.spi.onTransmit = (mosi) => this.transmit(mosi);
    const other = rp2040.spi[1 - this.pins.spi];
    other.onTransmit = () => other.completeTransmit(this.floating());
  }

  drive(index, level) {
    this.external.set(index, level);
    this.refreshInput(this.rp2040.gpio[index]);
  }

  refreshInput(pin) {
    let level;
    if (pin.outputEnable) level = pin.outputValue;
    else if (this.external.has(pin.index)) level = this.external.get(pin.index);
    else level = pin.pullupEnabled;
    if (pin.rawInputValue !== level) pin.setInputValue(level);
  }

  onChipSelect(low) {
    if (low === this.selected) return;
    this.selected = low;
    if (this.chip && !this.faults.absent) this.chip.select(low);
  }

  onResetPin(low) {
    this.resetLow = low;
    if (low && this.faults.untilReset && this.chip) {
      this.chip.faults.stuckCommand = false;
      this.faults = { ...this.faults, stuckCommand: false, untilReset: false };
    }
    this.applyReset();
  }

  applyReset() {
    if (this.chip) this.chip.setReset(this.resetLow || !!this.faults.heldInReset);
  }

  setFaults(faults) {
    this.faults = faults;
    this.applyReset();
  }

  floating() {
    if (this.faults.misoStuckHigh) return 0xff;
    return this.rp2040.gpio[this.pins.miso].pullupEnabled ? 0xff : 0x00;
  }

  connected() {
    const { gpio } = this.rp2040;
    const p = this.pins;
    return gpio[p.sck].functionSelect === FUNC_SPI && gpio[p.mosi].functionSelect === FUNC_SPI
      && gpio[p.miso].functionSelect === FUNC_SPI;
  }

  transmit(mosi) {
    const { chip, faults } = this;
    let miso;
    if (chip && this.selected && !faults.absent && !faults.heldInReset && this.connected()) {
      miso = chip.exchange(mosi & 0xff);
      if (faults.misoStuckHigh) miso = 0xff;
    } else {
      miso = this.floating();
    }
    this.bytes++;
    this.pendingMiso = miso;
    // One byte takes dataBits SPI clocks at the rate the firmware programmed.
    const hz = this.spi.clockFrequency || 1e6;
    const ns = (this.spi.dataBits * 1e9) / hz;
    this.busNanos += ns;
    this.spiDone.schedule(ns);
  }
}
