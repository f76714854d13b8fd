import { randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RdbInspector } from '../formats/rdb-inspector.js';
import { classifyKey, type KeyClass } from '../../../core/tyk/key-classes.js';
import { CommandEncoder, type RespPipe } from '../protocol/resp-pipe.js';

/** Expiries further than this past the inspection are treated as "still alive" (a restore takes less). */
const HORIZON_MS = 24 * 3600_000;

interface Tally {
  /** Keys with no expiry, or expiring after the horizon. */
  lasting: number;
  /** Keys expiring within the horizon, counted per whole second of their expiry. */
  bySecond: Map<number, number>;
  /** Keys already expired when the file was inspected. */
  expiredAtInspection: number;
}

/**
 * What the staged RDB says the target should hold, per database and Tyk class, at any later instant:
 * keys with no expiry plus those expiring after it. Memory is bounded by the number of distinct expiry
 * seconds within 24 h (not the number of keys): the file is streamed through the RDB inspector once.
 */
export class KeyExpectation {
  private readonly tallies = new Map<number, Map<KeyClass, Tally>>();

  constructor(readonly inspectedAt: number) {}

  /** @internal called per key while inspecting. */
  add(db: number, cls: KeyClass, expiresAtMs: number | null): void {
    let byClass = this.tallies.get(db);
    if (!byClass) this.tallies.set(db, (byClass = new Map()));
    let t = byClass.get(cls);
    if (!t) byClass.set(cls, (t = { lasting: 0, bySecond: new Map(), expiredAtInspection: 0 }));
    if (expiresAtMs === null || expiresAtMs > this.inspectedAt + HORIZON_MS) t.lasting++;
    else if (expiresAtMs <= this.inspectedAt) t.expiredAtInspection++;
    else {
      const s = Math.floor(expiresAtMs / 1000);
      t.bySecond.set(s, (t.bySecond.get(s) ?? 0) + 1);
    }
  }

  /** Database indexes with keys in the snapshot, ascending. */
  databases(): number[] {
    return [...this.tallies.keys()].sort((a, b) => a - b);
  }

  classesOf(db: number): KeyClass[] {
    return [...(this.tallies.get(db)?.keys() ?? [])];
  }

  /**
   * Bounds on the keys of (db, class) alive at `atMs`: `min` counts only keys certainly alive (expiry second
   * wholly after atMs), `max` also those expiring within atMs's second. Equal except for that second.
   */
  aliveAt(db: number, cls: KeyClass, atMs: number): { min: number; max: number } {
    const t = this.tallies.get(db)?.get(cls);
    if (!t) return { min: 0, max: 0 };
    let min = t.lasting;
    let max = t.lasting;
    for (const [s, n] of t.bySecond) {
      if (s * 1000 > atMs) min += n;
      if (s * 1000 + 999 > atMs) max += n;
    }
    return { min, max };
  }

  /** Keys of (db, class) expiring in [fromMs, toMs]: how far a count taken in that window may legitimately move. */
  expiringBetween(db: number, cls: KeyClass, fromMs: number, toMs: number): number {
    return Math.max(0, this.aliveAt(db, cls, fromMs).max - this.aliveAt(db, cls, toMs).min);
  }

  /** Total keys of (db, class) in the file, whatever their expiry. */
  inFile(db: number, cls: KeyClass): number {
    const t = this.tallies.get(db)?.get(cls);
    if (!t) return 0;
    let n = t.lasting + t.expiredAtInspection;
    for (const v of t.bySecond.values()) n += v;
    return n;
  }

  /** True once `atMs` is past the horizon, where keys counted as lasting may in fact have expired. */
  beyondHorizon(atMs: number): boolean {
    return atMs > this.inspectedAt + HORIZON_MS;
  }
}

/** Streams the staged RDB through the inspector (which also re-checks its structure and CRC) and tallies its keys. */
export async function buildKeyExpectation(rdbFile: string, signal?: AbortSignal): Promise<KeyExpectation> {
  const exp = new KeyExpectation(Date.now());
  const inspector = new RdbInspector({
    onKey: (db, key, _type, expiresAtMs) => exp.add(db, classifyKey(key), expiresAtMs),
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(createReadStream(rdbFile, { highWaterMark: 1 << 20 }), inspector, sink, { signal });
  return exp;
}

/**
 * Exact-enough membership for key names: a 64-bit fingerprint per key (fingerprint(): two 32-bit lanes, seeded
 * per process) in an open-addressing table, about 16 bytes per key. Used where a key may be met twice (a key-level backup, since SCAN may return
 * a key twice) and counts must not double it. A false "seen" needs two keys with the same 64-bit
 * fingerprint: for 10 million keys, odds of about 3 in a million that one count is off by one.
 */
export class KeySet {
  private hi = new Uint32Array(1024);
  private lo = new Uint32Array(1024);
  private size = 0;

  /** Adds the key; false when it was already there. */
  add(key: Uint8Array): boolean {
    fingerprint(key);
    const h = FP[0]!;
    const l = FP[1]! || 1; // (x, 0) marks an empty slot
    if ((this.size + 1) * 2 > this.hi.length) this.grow();
    return this.insert(h, l);
  }

  private insert(h: number, l: number): boolean {
    const mask = this.hi.length - 1;
    let i = (h ^ l) & mask;
    while (this.lo[i] !== 0) {
      if (this.hi[i] === h && this.lo[i] === l) return false;
      i = (i + 1) & mask;
    }
    this.hi[i] = h;
    this.lo[i] = l;
    this.size++;
    return true;
  }

  private grow(): void {
    const { hi, lo } = this;
    this.hi = new Uint32Array(hi.length * 2);
    this.lo = new Uint32Array(lo.length * 2);
    this.size = 0;
    for (let i = 0; i < hi.length; i++) if (lo[i] !== 0) this.insert(hi[i]!, lo[i]!);
  }
}

/**
 * The expectation from a running server holding the snapshot (a scratch server that loaded an AOF folder):
 * SCAN every database with pipelined PEXPIRETIME (PTTL before Redis 7).
 */
export async function expectationFromServer(
  openPipe: (db: number) => Promise<RespPipe>,
  dbs: number[],
  pexpiretime: boolean,
  signal?: AbortSignal,
): Promise<KeyExpectation> {
  const exp = new KeyExpectation(Date.now());
  for (const db of dbs) {
    const pipe = await openPipe(db);
    try {
      let cursor = '0';
      do {
        signal?.throwIfAborted();
        const enc = new CommandEncoder();
        enc.command('SCAN', cursor, 'COUNT', '1000');
        const [page] = await pipe.exec(enc.take());
        const [next, keys] = page as [Buffer, Buffer[]];
        cursor = next.toString('latin1');
        for (const k of keys) enc.command(pexpiretime ? 'PEXPIRETIME' : 'PTTL', k);
        const ttls = await pipe.exec(enc.take());
        const now = Date.now();
        keys.forEach((k, i) => {
          const t = ttls[i];
          if (typeof t !== 'number' || t === -2) return;
          exp.add(db, classifyKey(k), t < 0 ? null : pexpiretime ? t : now + t);
        });
      } while (cursor !== '0');
    } finally {
      pipe.close();
    }
  }
  return exp;
}

/** The last fingerprint() result: [high, low] (a shared array, not an object per key). */
const FP = new Uint32Array(2);
/** Seeds drawn per process: key names chosen to collide would have to be chosen for this run. */
const SEED = randomFillSync(new Uint32Array(2));

/**
 * A 64-bit fingerprint of `key` into FP, in JavaScript: two 32-bit lanes, each a multiply-xor over every byte (the
 * second rotated between bytes, so the lanes differ), then mixed into each other and avalanched. A native SHA-1 per
 * key cost 2.5 µs of call overhead (1.26 of 10 CPU-s in a 500,000-key restore); this is a few ns per byte. Not
 * cryptographic: it only has to spread key names (the table's odds above assume a uniform 64-bit value).
 */
function fingerprint(key: Uint8Array): void {
  let a = SEED[0]! ^ key.length;
  let b = SEED[1]! ^ Math.imul(key.length, 0x9e3779b1);
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(((b << 13) | (b >>> 19)) ^ c, 0x85ebca6b);
  }
  a = mix32(a ^ Math.imul(b, 0xc2b2ae35));
  b = mix32(b ^ Math.imul(a, 0x27d4eb2f));
  FP[0] = a;
  FP[1] = b;
}

/** A 32-bit finalizer: every input bit moves about half the output bits. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
