/**
 * Just enough of WebAssembly's binary format to assemble the project's two small kernels (crc64-kernel.ts,
 * lzf-kernel.ts) from their instructions at run time: no build step, no binary blob, nothing fetched.
 */

/** The subset of the WebAssembly API this uses (the project's TypeScript libs do not declare it). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** Unsigned LEB128. */
export const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n !== 0 ? b | 0x80 : b);
  } while (n !== 0);
  return out;
};

// Opcodes and types (WebAssembly core spec, binary format).
export const I32 = 0x7f;
export const I64 = 0x7e;
/** A block, loop or if without a result. */
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const IF = [0x04, 0x40];
export const ELSE = 0x05;
export const END = 0x0b;
export const BR = 0x0c;
export const BR_IF = 0x0d;
export const RETURN = 0x0f;
export const SELECT = 0x1b;
export const GET = 0x20;
export const SET = 0x21;
export const I64_LOAD = 0x29;
export const I32_LOAD8_U = 0x2d;
export const I64_STORE = 0x37;
export const I32_STORE8 = 0x3a;
export const I32_CONST = 0x41;
export const I64_CONST = 0x42;
export const I32_EQZ = 0x45;
export const I32_EQ = 0x46;
export const I32_LT_S = 0x48;
export const I32_LT_U = 0x49;
export const I32_GT_U = 0x4b;
export const I32_GE_U = 0x4f;
export const I32_ADD = 0x6a;
export const I32_SUB = 0x6b;
export const I32_AND = 0x71;
export const I32_OR = 0x72;
export const I32_XOR = 0x73;
export const I32_SHL = 0x74;
export const I32_SHR_U = 0x76;
export const I64_XOR = 0x85;
export const I64_SHR_U = 0x88;
export const I32_WRAP_I64 = 0xa7;

/** A memory instruction with its alignment (log2) and offset immediates. */
export const mem = (code: number, align: number, offset: number): number[] => [code, ...uleb(align), ...uleb(offset)];

/** A signed LEB128 constant for i32.const / i64.const, within the one-byte range -64..63. */
export const small = (n: number): number => {
  if (!Number.isInteger(n) || n < -64 || n > 63) throw new Error(`wasm constant ${n} out of the one-byte range`);
  return n & 0x7f;
};

export interface KernelSpec {
  /** Parameter types and result types of the one exported function. */
  params: number[];
  results: number[];
  /** Groups of extra locals: [count, type]. */
  locals: Array<[number, number]>;
  /** The function's body, its final END included. */
  body: number[];
  /** Pages of 64 KiB of the one (exported) memory, fixed size. */
  pages: number;
  /** Export names of the memory and of the function. */
  memoryName: string;
  functionName: string;
}

/** The module's bytes: one function type, one function, one memory of fixed size, both exported. */
export function assembleKernel(k: KernelSpec): Uint8Array {
  const func = [...uleb(k.locals.length), ...k.locals.flatMap(([n, t]) => [...uleb(n), t]), ...k.body];
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, k.params.length, ...k.params, k.results.length, ...k.results]), // type 0
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 1, ...uleb(k.pages), ...uleb(k.pages)]), // one memory, min = max
    ...section(7, [2, ...name(k.memoryName), 0x02, 0, ...name(k.functionName), 0x00, 0]), // exports
    ...section(10, [1, ...uleb(func.length), ...func]), // code
  ]);
}

/** The exports of the module, or null where WebAssembly is unavailable or refuses it. */
export function instantiate(bytes: Uint8Array): Record<string, unknown> | null {
  const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly;
  if (wasm === undefined) return null;
  try {
    return new wasm.Instance(new wasm.Module(bytes)).exports;
  } catch {
    return null;
  }
}
