// The board's QSPI flash as the firmware sees it: read through XIP (rp2040js serves reads from
// rp2040.flash), erased and programmed through the bootrom's flash functions, which we replace
// with breakpoints handled here, and identified by the Read Unique ID command (0x4B) that
// pico-sdk sends through the SSI at start-up (machine.unique_id() comes from it).
import { RPSSI } from './internals.mjs';
import { BasePeripheral } from 'rp2040js';
import { openSync, readSync, writeSync, fstatSync, ftruncateSync } from 'node:fs';

const SECTOR = 4096;
const PAGE = 256;
// W25Q16JV datasheet, AC characteristics (typical): sector erase 45 ms, page program 0.4 ms.
// The CPU waits this long with interrupts off, as on the board.
const SECTOR_ERASE_NS = 45e6;
const PAGE_PROGRAM_NS = 0.4e6;

// Bootrom function codes (RP2040 datasheet 2.8.3, "Bootrom contents"): two ASCII characters.
const code = (s) => s.charCodeAt(0) | (s.charCodeAt(1) << 8);
const ROM_NOOPS = ['IF', 'EX', 'FC', 'CX']; // connect, exit XIP, flush cache, enter cmd XIP
export const BKPT_ERASE = 0x45; // flash_range_erase(addr, count, block_size, block_cmd)
export const BKPT_PROGRAM = 0x50; // flash_range_program(addr, data, count)

/** Patch the bootrom's flash functions: the no-op ones return at once, erase and program
 *  become `bkpt #n; bx lr` stubs that Flash.onBreak() serves. */
export function patchBootrom(bootrom) {
  const bytes = new Uint8Array(bootrom.buffer, bootrom.byteOffset, bootrom.byteLength);
  const half = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = half.getUint16(0x14, true);
  const found = new Map();
  for (let p = table; ; p += 4) {
    const c = half.getUint16(p, true);
    if (!c) break;
    found.set(c, half.getUint16(p + 2, true) & ~1);
  }
  const at = (name) => {
    const addr = found.get(code(name));
    if (addr === undefined) throw new Error(`bootrom has no function '${name}'`);
    return addr;
  };
  for (const name of ROM_NOOPS) half.setUint16(at(name), 0x4770, true); // bx lr
  for (const [name, bkpt] of [['RE', BKPT_ERASE], ['RP', BKPT_PROGRAM]]) {
    half.setUint16(at(name), 0xbe00 | bkpt, true);
    half.setUint16(at(name) + 2, 0x4770, true);
  }
}

/** The flash chip: contents kept in a file (the board's flash survives resets and runs). */
export class FlashChip {
  constructor({ path, size, uniqueId }) {
    this.size = size;
    this.uniqueId = uniqueId; // 8 bytes
    this.fd = openSync(path, 'r+');
    if (fstatSync(this.fd).size !== size) ftruncateSync(this.fd, size);
    this.image = new Uint8Array(size);
    readSync(this.fd, this.image, 0, size, 0);
    this.erases = 0;
    this.programs = 0;
  }

  /** Serve a bootrom breakpoint. Returns the nanoseconds the CPU stalls, or -1 if not ours. */
  onBreak(code, rp2040) {
    const r = rp2040.core.registers;
    if (code === BKPT_ERASE) {
      const addr = r[0] >>> 0;
      const count = r[1] >>> 0;
      const start = addr - (addr % SECTOR);
      const end = Math.min(this.size, Math.ceil((addr + count) / SECTOR) * SECTOR);
      this.image.fill(0xff, start, end);
      rp2040.flash.fill(0xff, start, end);
      this.persist(start, end);
      this.erases += (end - start) / SECTOR;
      return ((end - start) / SECTOR) * SECTOR_ERASE_NS;
    }
    if (code === BKPT_PROGRAM) {
      const addr = r[0] >>> 0;
      const data = r[1] >>> 0;
      const count = r[2] >>> 0;
      const end = Math.min(this.size, addr + count);
      for (let i = addr; i < end; i++) {
        // NOR flash programming only clears bits
        this.image[i] &= rp2040.readUint8(data + (i - addr));
      }
      rp2040.flash.set(this.image.subarray(addr, end), addr);
      this.persist(addr, end);
      this.programs++;
      return Math.ceil(count / PAGE) * PAGE_PROGRAM_NS;
    }
    return -1;
  }

  persist(start, end) {
    if (end > start) writeSync(this.fd, this.image, start, end - start, start);
  }

  /** Put the stored contents into a fresh RP2040's flash (power-on or reset). */
  loadInto(rp2040) {
    rp2040.flash.set(this.image, 0);
  }

  /** Answer one byte of a command sent through the SSI while the firmware drives CS low. */
  commandByte(index, first) {
    if (first === 0x4b && index >= 5 && index < 13) return this.uniqueId[index - 5]; // RUID
    if (first === 0x9f && index >= 1 && index <= 3) return [0xef, 0x40, 0x15][index - 1]; // JEDEC
    return 0;
  }
}

const GPIO_QSPI_SS_CTRL = 0x0c;
const OUTOVER_SHIFT = 8;
const OUTOVER_LOW = 2;

/** IO_QSPI: registers kept so read-modify-write works; the SS override is the flash's CS. */
export class QSPIIO extends BasePeripheral {
  constructor(rp2040, name, onChipSelect) {
    super(rp2040, name);
    this.regs = new Uint32Array(0x40 / 4);
    this.onChipSelect = onChipSelect;
  }
  readUint32(offset) {
    return offset < 0x40 ? this.regs[offset >> 2] : 0;
  }
  writeUint32(offset, value) {
    if (offset >= 0x40) return;
    this.regs[offset >> 2] = value;
    if (offset === GPIO_QSPI_SS_CTRL) {
      this.onChipSelect(((value >> OUTOVER_SHIFT) & 3) === OUTOVER_LOW);
    }
  }
}

const SSI_DR0 = 0x60;

/** The SSI with the flash behind it for direct commands (CS forced low by software). */
export class FlashSSI extends RPSSI {
  constructor(rp2040, name, flash) {
    super(rp2040, name);
    this.flash = flash;
    this.selected = false;
    this.index = 0;
    this.first = 0;
    this.rx = [];
  }
  select(low) {
    this.selected = low;
    this.index = 0;
    this.rx.length = 0;
  }
  readUint32(offset) {
    if (offset === SSI_DR0 && this.selected) return this.rx.length ? this.rx.shift() : 0;
    return super.readUint32(offset);
  }
  writeUint32(offset, value) {
    if (offset === SSI_DR0 && this.selected) {
      if (this.index === 0) this.first = value & 0xff;
      this.rx.push(this.flash.commandByte(this.index++, this.first));
      return;
    }
    super.writeUint32(offset, value);
  }
}

export { SECTOR, PAGE };
