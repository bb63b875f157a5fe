// UF2 images (https://github.com/microsoft/uf2): 512-byte blocks, each carrying up to 476
// bytes for one target address. The RP2040 bootrom takes family 0xe48bff56 at 0x10000000+.
const MAGIC_START0 = 0x0a324655;
const MAGIC_START1 = 0x9e5d5157;
const MAGIC_END = 0x0ab16f30;
const FLAG_NOT_MAIN_FLASH = 0x00000001;
const FLAG_FAMILY_ID_PRESENT = 0x00002000;
export const RP2040_FAMILY_ID = 0xe48bff56;
export const FLASH_BASE = 0x10000000;

/** Copy every RP2040 block of a UF2 image into `flash` (offset 0 = 0x10000000).
 *  Returns the number of bytes written; throws on a file that is not such an image. */
export function loadUF2(image, flash) {
  if (image.length === 0 || image.length % 512) {
    throw new Error(`not a UF2 image: ${image.length} bytes is not a multiple of 512`);
  }
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  let written = 0;
  let foreign = 0;
  for (let off = 0; off < image.length; off += 512) {
    if (view.getUint32(off, true) !== MAGIC_START0 || view.getUint32(off + 4, true) !== MAGIC_START1
        || view.getUint32(off + 508, true) !== MAGIC_END) {
      throw new Error(`not a UF2 image: bad magic in block ${off / 512}`);
    }
    const flags = view.getUint32(off + 8, true);
    const addr = view.getUint32(off + 12, true);
    const size = view.getUint32(off + 16, true);
    const family = view.getUint32(off + 28, true);
    if (flags & FLAG_NOT_MAIN_FLASH) continue;
    if ((flags & FLAG_FAMILY_ID_PRESENT) && family !== RP2040_FAMILY_ID) {
      foreign++;
      continue;
    }
    if (size > 476 || addr < FLASH_BASE || addr + size > FLASH_BASE + flash.length) {
      throw new Error(`UF2 block ${off / 512}: ${size} bytes at 0x${addr.toString(16)} lie outside the flash`);
    }
    flash.set(image.subarray(off + 32, off + 32 + size), addr - FLASH_BASE);
    written += size;
  }
  if (!written) {
    throw new Error(foreign ? 'the UF2 image holds no RP2040 blocks (made for another chip family?)'
      : 'the UF2 image is empty');
  }
  return written;
}
