/**
 * The CRC-64 of long inputs in WebAssembly, which has 64-bit integers: one 64-bit table load per input byte,
 * where the JavaScript loop in crc64.ts needs two 32-bit ones (about 1.4 GB/s against 1.15 on one core of the
 * project machine, bench/crc64.ts). The module is assembled below from its instructions: no build step, no
 * binary blob, nothing fetched (wasm-module.ts).
 *
 * Memory layout (one 64 KiB page for the tables and state, one for the input):
 *   [0, slices*2048)        table k at k*2048: entry i is the CRC of byte i followed by k zero bytes, as a
 *                           little-endian 64-bit word (crc64.ts's LO/HI halves)
 *   [STATE, STATE+8)        the CRC state, little-endian (low half, then high half)
 *   [INPUT, INPUT+INPUT_MAX) the bytes of one call
 * The function run(p, end) updates the state over memory[p..end): `slices` bytes per step (the state xored into
 * the step's first 8 bytes in place: the input is a copy), then byte by byte.
 */

import {
  assembleKernel, BLOCK, BR, BR_IF, END, GET, I32, I32_ADD, I32_AND, I32_CONST, I32_GE_U, I32_LOAD8_U, I32_LT_U, I32_SHL,
  I32_SUB, I32_WRAP_I64, I32_XOR, I64, I64_CONST, I64_LOAD, I64_SHR_U, I64_STORE, I64_XOR, instantiate, LOOP, mem, SET,
  small,
} from './wasm-module.js';

/** Most bytes one run() call takes. */
export const INPUT_MAX = 65536;
const INPUT = 65536;
const STATE = 32768;

export interface Crc64Kernel {
  /** The state as [low half, high half]: set before run(), read after. */
  state: Int32Array;
  /** Where run() reads its input: copy up to INPUT_MAX bytes here first. */
  input: Uint8Array;
  /** The same memory as a Buffer (for Buffer.copy into it without a view of the source). */
  inputBuffer: Buffer;
  /** Updates the state over input[0..n). */
  run: (n: number) => void;
}

function assemble(slices: number): Uint8Array {
  const P = 0; // param: input start
  const E = 1; // param: input end
  const CRC = 2; // local i64
  const X = 3; // local i64: the state xored with the step's first 8 bytes
  // The byte at p+j (j >= 8: not touched by the state), times 8, loaded from table k.
  const lookupInput = (j: number, k: number) => [GET, P, ...mem(I32_LOAD8_U, 0, j), I32_CONST, 3, I32_SHL, ...mem(I64_LOAD, 3, k * 2048)];
  // Byte j of x, times 8, loaded from table k.
  const lookupX = (j: number, k: number) => [
    GET, X, ...(j > 0 ? [I64_CONST, small(8 * j), I64_SHR_U] : []), I32_WRAP_I64, I32_CONST, 0xff, 0x01, I32_AND,
    I32_CONST, 3, I32_SHL, ...mem(I64_LOAD, 3, k * 2048),
  ];
  // XOR of terms as a balanced tree (a chain would make each step wait on the one before).
  const tree = (terms: number[][]): number[] =>
    terms.length === 1 ? terms[0]! : [...tree(terms.slice(0, terms.length >> 1)), ...tree(terms.slice(terms.length >> 1)), I64_XOR];
  const body: number[] = [
    I32_CONST, 0, ...mem(I64_LOAD, 3, STATE), SET, CRC,
    // while (end - p >= slices)
    ...BLOCK, ...LOOP,
    GET, E, GET, P, I32_SUB, I32_CONST, small(slices), I32_LT_U, BR_IF, 1,
    GET, CRC, GET, P, ...mem(I64_LOAD, 0, 0), I64_XOR, SET, X,
  ];
  // The bytes past the first 8 do not depend on the state: first, so they can overlap the previous step.
  const rest = Array.from({ length: slices - 8 }, (_, i) => lookupInput(8 + i, slices - 9 - i));
  const first = Array.from({ length: 8 }, (_, j) => lookupX(j, slices - 1 - j));
  body.push(...tree(rest), ...tree(first), I64_XOR);
  body.push(
    SET, CRC,
    GET, P, I32_CONST, small(slices), I32_ADD, SET, P,
    BR, 0, END, END,
    // while (p < end): crc = T0[(crc ^ byte) & 255] ^ (crc >> 8)
    ...BLOCK, ...LOOP,
    GET, P, GET, E, I32_GE_U, BR_IF, 1,
    GET, CRC, I32_WRAP_I64, GET, P, ...mem(I32_LOAD8_U, 0, 0), I32_XOR, I32_CONST, 0xff, 0x01, I32_AND,
    I32_CONST, 3, I32_SHL, ...mem(I64_LOAD, 3, 0),
    GET, CRC, I64_CONST, 8, I64_SHR_U, I64_XOR, SET, CRC,
    GET, P, I32_CONST, 1, I32_ADD, SET, P,
    BR, 0, END, END,
    I32_CONST, 0, GET, CRC, ...mem(I64_STORE, 3, STATE),
    END,
  );
  return assembleKernel({ params: [I32, I32], results: [], locals: [[2, I64]], body, pages: (INPUT + INPUT_MAX) / 65536, memoryName: 'm', functionName: 'run' });
}

/**
 * The kernel over crc64.ts's tables (lo/hi: slices*256 entries each), or null where WebAssembly is unavailable.
 * Big-endian platforms must not use it (the tables are written as little-endian words).
 */
export function crc64Kernel(hi: Int32Array, lo: Int32Array, slices: number): Crc64Kernel | null {
  if (slices * 2048 > STATE) return null;
  const exports = instantiate(assemble(slices));
  if (exports === null) return null;
  const buffer = (exports.m as { buffer: ArrayBuffer }).buffer;
  const words = new Int32Array(buffer, 0, slices * 512);
  for (let t = 0; t < slices * 256; t++) {
    words[t * 2] = lo[t]!;
    words[t * 2 + 1] = hi[t]!;
  }
  const run = exports.run as (p: number, end: number) => void;
  return {
    state: new Int32Array(buffer, STATE, 2),
    input: new Uint8Array(buffer, INPUT, INPUT_MAX),
    inputBuffer: Buffer.from(buffer, INPUT, INPUT_MAX),
    run: (n) => run(INPUT, INPUT + n),
  };
}
