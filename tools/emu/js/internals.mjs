// Parts of rp2040js that its package index does not export. Imported by file path (the
// package's "exports" map only covers the index), which resolves to the very modules the
// index uses, so classes and instances match.
export { SimulationClock } from '../node_modules/rp2040js/dist/esm/clock/simulation-clock.js';
export { RPSSI } from '../node_modules/rp2040js/dist/esm/peripherals/ssi.js';
