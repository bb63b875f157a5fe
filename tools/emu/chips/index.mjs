// The WIZnet chip models: W5100S (W5100S-EVB-Pico) and W5500 (W5500-EVB-Pico).
import { W5100S } from './w5100s.mjs';
import { W5500 } from './w5500.mjs';

export { W5100S, W5500 };

/** createChip('W5100S' | 'W5500', opts): a new chip model (name is case-insensitive). */
export function createChip(name, opts = {}) {
  switch (String(name).toUpperCase()) {
    case 'W5100S': return new W5100S(opts);
    case 'W5500': return new W5500(opts);
    default: throw new Error(`unknown WIZnet chip ${JSON.stringify(name)} (expected W5100S or W5500)`);
  }
}
