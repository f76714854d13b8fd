/**
 * RDB format constants (Redis src/rdb.h) and, for every value type, the layout the parser walks to skip it.
 * A layout is a tiny program over the ops below; `loop(...)` reads a length N and runs its body N times.
 */

/** Highest RDB version understood: 12 is written by Redis 7.4 (7.0 writes 10, 7.2 writes 11). */
export const RDB_MAX_VERSION = 12;

export const OPCODE = {
  SLOT_INFO: 0xf4,
  FUNCTION2: 0xf5,
  FUNCTION_PRE_GA: 0xf6,
  MODULE_AUX: 0xf7,
  IDLE: 0xf8,
  FREQ: 0xf9,
  AUX: 0xfa,
  RESIZEDB: 0xfb,
  EXPIRETIME_MS: 0xfc,
  EXPIRETIME: 0xfd,
  SELECTDB: 0xfe,
  EOF: 0xff,
} as const;

export const RDB_TYPE = {
  STRING: 0,
  LIST: 1,
  SET: 2,
  ZSET: 3,
  HASH: 4,
  ZSET_2: 5,
  MODULE_PRE_GA: 6,
  MODULE_2: 7,
  HASH_ZIPMAP: 9,
  LIST_ZIPLIST: 10,
  SET_INTSET: 11,
  ZSET_ZIPLIST: 12,
  HASH_ZIPLIST: 13,
  LIST_QUICKLIST: 14,
  STREAM_LISTPACKS: 15,
  HASH_LISTPACK: 16,
  ZSET_LISTPACK: 17,
  LIST_QUICKLIST_2: 18,
  STREAM_LISTPACKS_2: 19,
  SET_LISTPACK: 20,
  STREAM_LISTPACKS_3: 21,
  HASH_METADATA_PRE_GA: 22,
  HASH_LISTPACK_EX_PRE_GA: 23,
  HASH_METADATA: 24,
  HASH_LISTPACK_EX: 25,
} as const;

/** The Redis data type (as TYPE answers) an RDB value type holds; undefined for unknown types. */
export function redisTypeOf(rdbType: number): 'string' | 'list' | 'set' | 'zset' | 'hash' | 'stream' | 'module' | undefined {
  switch (rdbType) {
    case 0:
      return 'string';
    case 1: case 10: case 14: case 18:
      return 'list';
    case 2: case 11: case 20:
      return 'set';
    case 3: case 5: case 12: case 17:
      return 'zset';
    case 4: case 9: case 13: case 16: case 22: case 23: case 24: case 25:
      return 'hash';
    case 15: case 19: case 21:
      return 'stream';
    case 6: case 7:
      return 'module';
    default:
      return undefined;
  }
}

// Layout ops. Each op consumes bytes except LOOP's bookkeeping.
/** A string (raw, int-encoded or LZF), skipped. */
export const OP_STR = 1;
/** A length (6/14/32/64-bit encoding), ignored. */
export const OP_LEN = 2;
/** OP_FIX n: n raw bytes. */
export const OP_FIX = 3;
/** A zset v1 score: 1 length byte (253..255 = nan/+inf/-inf) then that many ASCII bytes. */
export const OP_DBL = 4;
/** OP_LOOP bodySize: a length N, then the next bodySize slots N times. */
export const OP_LOOP = 5;
/** A module-2 value body: (opcode length, operand)* up to opcode 0 (EOF). */
export const OP_MODULE = 6;
/** The key of the current entry: a string, captured and reported. */
export const OP_KEY = 7;
/** An AUX field name / value: strings, captured. */
export const OP_AUX_KEY = 8;
export const OP_AUX_VAL = 9;

export type Layout = readonly number[];

const S = OP_STR;
const L = OP_LEN;
const fix = (n: number): number[] => [OP_FIX, n];
const loop = (...body: Array<number | number[]>): number[] => {
  const flat = body.flat();
  return [OP_LOOP, flat.length, ...flat];
};

function streamLayout(version: 1 | 2 | 3): Layout {
  return [
    ...loop(S, S), // listpacks: master ID (16-byte string) + listpack
    L, L, L, // length, last ID (ms, seq)
    ...(version >= 2 ? [L, L, L, L, L] : []), // first ID, max deleted ID, entries added
    ...loop(
      S, L, L, // group name, last delivered ID
      version >= 2 ? [L] : [], // entries read
      loop(fix(16), fix(8), L), // global PEL: raw ID, delivery time, delivery count
      loop(S, fix(8), version >= 3 ? fix(8) : [], loop(fix(16))), // consumers: name, seen, active, PEL IDs
    ),
  ];
}

const BLOB: Layout = [S];

/** Value layouts by RDB type. Type 6 (4.0 release-candidate modules) is refused by the parser. */
export const VALUE_LAYOUTS: ReadonlyArray<Layout | undefined> = (() => {
  const t: Array<Layout | undefined> = [];
  t[RDB_TYPE.STRING] = [S];
  t[RDB_TYPE.LIST] = loop(S);
  t[RDB_TYPE.SET] = loop(S);
  t[RDB_TYPE.ZSET] = loop(S, OP_DBL);
  t[RDB_TYPE.HASH] = loop(S, S);
  t[RDB_TYPE.ZSET_2] = loop(S, fix(8));
  t[RDB_TYPE.MODULE_2] = [L, OP_MODULE]; // module type id, then the opcode stream
  for (const blob of [9, 10, 11, 12, 13, 16, 17, 20, 23]) t[blob] = BLOB;
  t[RDB_TYPE.LIST_QUICKLIST] = loop(S);
  t[RDB_TYPE.LIST_QUICKLIST_2] = loop(L, S); // container kind (plain / packed), node
  t[RDB_TYPE.STREAM_LISTPACKS] = streamLayout(1);
  t[RDB_TYPE.STREAM_LISTPACKS_2] = streamLayout(2);
  t[RDB_TYPE.STREAM_LISTPACKS_3] = streamLayout(3);
  t[RDB_TYPE.HASH_METADATA_PRE_GA] = loop(L, S, S); // per field: absolute TTL, field, value
  t[RDB_TYPE.HASH_METADATA] = [...fix(8), ...loop(L, S, S)]; // min expire, then per field: relative TTL, field, value
  t[RDB_TYPE.HASH_LISTPACK_EX] = [...fix(8), S]; // min expire, listpack with TTLs
  return t;
})();

/** Layouts of the records that are not keys. */
export const KEY_LAYOUT: Layout = [OP_KEY];
export const AUX_LAYOUT: Layout = [OP_AUX_KEY, OP_AUX_VAL];
/** Module id, `when` opcode (always UINT), `when`, then the module's opcode stream. */
export const MODULE_AUX_LAYOUT: Layout = [L, L, L, OP_MODULE];
export const FUNCTION2_LAYOUT: Layout = [S];
/** Redis 7.0 rc1/rc2: name, engine, has-description flag (0/1) [+ description], code. */
export const FUNCTION_PRE_GA_LAYOUT: Layout = [S, S, ...loop(S), S];
/** Cluster slot hint (Redis 8): slot id, keys, expires. */
export const SLOT_INFO_LAYOUT: Layout = [L, L, L];

/** Operand layouts inside a module value, by module opcode (1 SINT, 2 UINT, 3 FLOAT, 4 DOUBLE, 5 STRING). */
export const MODULE_OPERANDS: ReadonlyArray<Layout | undefined> = [undefined, [L], [L], fix(4), fix(8), [S]];
