/**
 * LZF decompression in WebAssembly, for the live restore's strings (each one decoded into its SET command):
 * 0.63 µs per 790-byte Tyk session against 1.8 for the JavaScript loop, copies in and out included (bench/lzf.ts;
 * about half of it is the two copies). Assembled from its instructions (wasm-module.ts).
 *
 * Memory (three 64 KiB pages): the compressed input at [0, IO_MAX), the output at [IO_MAX, 2 * IO_MAX), then slack.
 * The function decode(ip, end, op, outEnd) decodes memory[ip, end) to memory[op, ...) and returns the end of its output
 * when that is exactly outEnd, else -1 (corrupt or cut short, a reference before op, or output past outEnd). Copies go
 * 8 bytes at a time, whole words even for the last few bytes (they may read past a literal run and write up to 7 bytes
 * past the run, which the next token overwrites), where source and destination are at least 8 bytes apart; byte by
 * byte where they are not (a back reference may repeat the bytes it is writing).
 */

import {
  assembleKernel, BLOCK, BR, BR_IF, ELSE, END, GET, I32, I32_ADD, I32_AND, I32_CONST, I32_EQ, I32_EQZ, I32_GE_U,
  I32_GT_U, I32_LOAD8_U, I32_LT_S, I32_LT_U, I32_OR, I32_SHL, I32_SHR_U, I32_STORE8, I32_SUB, I64_LOAD, I64_STORE, IF,
  instantiate, LOOP, mem, RETURN, SELECT, SET, small,
} from './wasm-module.js';

/** Most compressed bytes, and most output bytes, of one decode call. */
export const IO_MAX = 65536;

export interface LzfKernel {
  /** Where decode() reads: copy the compressed bytes to [0, n). */
  input: Buffer;
  /** Where decode() writes: its output is output[0, outLen). */
  output: Buffer;
  /** Decodes input[0, n) into output[0, outLen); true when that is exactly what it holds. */
  decode: (n: number, outLen: number) => boolean;
}

function assemble(): Uint8Array {
  const IP = 0; // params
  const END_ = 1;
  const OP = 2;
  const OUT_END = 3;
  const START = 4; // locals
  const CTRL = 5;
  const LEN = 6;
  const REF = 7;
  const STOP = 8;
  const inc = (local: number, n: number) => [GET, local, I32_CONST, small(n), I32_ADD, SET, local];
  const fail = [IF[0]!, IF[1]!, I32_CONST, small(-1), RETURN, END];
  // LEN bytes from REF to OP, then both advanced past them, LEN 0.
  const bytes = [
    ...BLOCK, ...LOOP,
    GET, LEN, I32_EQZ, BR_IF, 1,
    GET, OP, GET, REF, ...mem(I32_LOAD8_U, 0, 0), ...mem(I32_STORE8, 0, 0),
    ...inc(OP, 1), ...inc(REF, 1), GET, LEN, I32_CONST, 1, I32_SUB, SET, LEN,
    BR, 0, END, END,
  ];
  // LEN bytes from REF to OP, 8 at a time: the last word may write up to 7 bytes past them (the next token overwrites
  // them; past outEnd they land in the slack page and are never read back). REF must be at least 8 bytes before OP, or
  // in the input. OP ends just past the LEN bytes.
  const words = [
    GET, OP, GET, LEN, I32_ADD, SET, STOP,
    ...LOOP,
    GET, OP, GET, REF, ...mem(I64_LOAD, 0, 0), ...mem(I64_STORE, 0, 0),
    ...inc(OP, 8), ...inc(REF, 8),
    GET, OP, GET, STOP, I32_LT_U, BR_IF, 0,
    END,
    GET, STOP, SET, OP,
  ];
  const body = [
    GET, OP, SET, START,
    ...BLOCK, ...LOOP,
    GET, IP, GET, END_, I32_GE_U, BR_IF, 1,
    GET, IP, ...mem(I32_LOAD8_U, 0, 0), SET, CTRL, ...inc(IP, 1),
    GET, CTRL, I32_CONST, 32, I32_LT_U,
    ...IF,
    // A literal run of CTRL + 1 bytes.
    GET, CTRL, I32_CONST, 1, I32_ADD, SET, LEN,
    GET, IP, GET, LEN, I32_ADD, GET, END_, I32_GT_U,
    GET, OP, GET, LEN, I32_ADD, GET, OUT_END, I32_GT_U,
    I32_OR, ...fail,
    GET, IP, SET, REF,
    GET, IP, GET, LEN, I32_ADD, SET, IP,
    ...words,
    ELSE,
    // A back reference: length CTRL >> 5 (7: plus the next byte), plus 2; distance ((CTRL & 31) << 8) + next byte + 1.
    GET, CTRL, I32_CONST, 5, I32_SHR_U, SET, LEN,
    GET, LEN, I32_CONST, 7, I32_EQ,
    ...IF,
    GET, IP, GET, END_, I32_GE_U, ...fail,
    GET, LEN, GET, IP, ...mem(I32_LOAD8_U, 0, 0), I32_ADD, SET, LEN, ...inc(IP, 1),
    END,
    GET, IP, GET, END_, I32_GE_U, ...fail,
    GET, OP, GET, CTRL, I32_CONST, 31, I32_AND, I32_CONST, 8, I32_SHL, I32_SUB, I32_CONST, 1, I32_SUB,
    GET, IP, ...mem(I32_LOAD8_U, 0, 0), I32_SUB, SET, REF, ...inc(IP, 1),
    ...inc(LEN, 2),
    GET, REF, GET, START, I32_LT_S,
    GET, OP, GET, LEN, I32_ADD, GET, OUT_END, I32_GT_U,
    I32_OR, ...fail,
    GET, OP, GET, REF, I32_SUB, I32_CONST, 8, I32_LT_U,
    ...IF, ...bytes, ELSE, ...words, END,
    END,
    BR, 0, END, END,
    // op === outEnd ? op : -1
    GET, OP, I32_CONST, small(-1), GET, OP, GET, OUT_END, I32_EQ, SELECT,
    END,
  ];
  return assembleKernel({ params: [I32, I32, I32, I32], results: [I32], locals: [[5, I32]], body, pages: 3, memoryName: 'm', functionName: 'decode' });
}

/** The kernel, or null where WebAssembly is unavailable. Its memory is its own: one call at a time (node's one thread). */
export function lzfKernel(): LzfKernel | null {
  const exports = instantiate(assemble());
  if (exports === null) return null;
  const buffer = (exports.m as { buffer: ArrayBuffer }).buffer;
  const decode = exports.decode as (ip: number, end: number, op: number, outEnd: number) => number;
  return {
    input: Buffer.from(buffer, 0, IO_MAX),
    output: Buffer.from(buffer, IO_MAX, IO_MAX),
    decode: (n, outLen) => decode(0, n, IO_MAX, IO_MAX + outLen) === IO_MAX + outLen,
  };
}
