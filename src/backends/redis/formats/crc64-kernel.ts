/**
 * The CRC-64 of long inputs in WebAssembly, which has 64-bit integers: one 64-bit table load per input byte,
 * where the JavaScript loop in crc64.ts needs two 32-bit ones (about 1.4 GB/s against 1.15 on one core of the
 * project machine, bench/crc64.ts). The module is assembled below from its instructions: no build step, no
 * binary blob, nothing fetched.
 *
 * Memory layout (one 64 KiB page for the tables and state, one for the input):
 *   [0, slices*2048)        table k at k*2048: entry i is the CRC of byte i followed by k zero bytes, as a
 *                           little-endian 64-bit word (crc64.ts's LO/HI halves)
 *   [STATE, STATE+8)        the CRC state, little-endian (low half, then high half)
 *   [INPUT, INPUT+INPUT_MAX) the bytes of one call
 * The function run(p, end) updates the state over memory[p..end): `slices` bytes per step (the state xored into
 * the step's first 8 bytes in place: the input is a copy), then byte by byte.
 */

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

/** The subset of WebAssembly this uses (the project's TypeScript libs do not declare it). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n !== 0 ? b | 0x80 : b);
  } while (n !== 0);
  return out;
};

// Opcodes and types (WebAssembly core spec, binary format).
const I32 = 0x7f;
const I64 = 0x7e;
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const GET = 0x20;
const SET = 0x21;
const I64_LOAD = 0x29;
const I32_LOAD8_U = 0x2d;
const I64_STORE = 0x37;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const I32_LT_U = 0x49;
const I32_GE_U = 0x4f;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_AND = 0x71;
const I32_XOR = 0x73;
const I32_SHL = 0x74;
const I64_XOR = 0x85;
const I64_SHR_U = 0x88;
const I32_WRAP_I64 = 0xa7;

/** A signed LEB128 constant for small non-negative values (< 64), as i32.const / i64.const take. */
const small = (n: number): number => {
  if (n < 0 || n > 63) throw new Error(`crc64 kernel: constant ${n} out of range`);
  return n;
};

function assemble(slices: number): Uint8Array {
  const P = 0; // param: input start
  const E = 1; // param: input end
  const CRC = 2; // local i64
  const mem = (code: number, align: number, offset: number) => [code, ...uleb(align), ...uleb(offset)];
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
  const func = [1, 2, I64, ...body]; // one group of locals: 2 x i64 (crc, x)
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 2, I32, I32, 0]), // type 0: (i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, ...uleb((INPUT + INPUT_MAX) / 65536)]), // one memory, fixed size
    ...section(7, [2, ...name('m'), 0x02, 0, ...name('run'), 0x00, 0]), // exports
    ...section(10, [1, ...uleb(func.length), ...func]), // code
  ]);
}

/**
 * The kernel over crc64.ts's tables (lo/hi: slices*256 entries each), or null where WebAssembly is unavailable.
 * Big-endian platforms must not use it (the tables are written as little-endian words).
 */
export function crc64Kernel(hi: Int32Array, lo: Int32Array, slices: number): Crc64Kernel | null {
  const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly;
  if (wasm === undefined || slices * 2048 > STATE) return null;
  let exports: Record<string, unknown>;
  try {
    exports = new wasm.Instance(new wasm.Module(assemble(slices))).exports;
  } catch {
    return null;
  }
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
