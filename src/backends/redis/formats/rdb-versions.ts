import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { integrityError } from '../../../core/errors.js';
import { createDecompressor } from '../../../core/pipeline.js';

/**
 * Which RDB format versions a Redis release can load. Redis refuses an RDB file (and a DUMP payload) whose
 * version is newer than its own RDB_VERSION (src/rdb.h), so this table is what keeps a restore from
 * stopping a server that will then refuse to start. Source: Redis src/rdb.h per release, cross-checked with
 * redis/librdb src/redisver.h. Newest first; a release between two rows loads what the older row loads.
 */
const RDB_BY_RELEASE: ReadonlyArray<readonly [major: number, minor: number, rdb: number]> = [
  [8, 6, 13],
  [7, 4, 12], // also 8.0, 8.2, 8.4
  [7, 2, 11],
  [7, 0, 10],
  [5, 0, 9], // also 6.0, 6.2
  [4, 0, 8],
  [3, 2, 7],
  [2, 6, 6], // also 2.8, 3.0
  [2, 4, 5],
];

function parseRelease(version: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** True when a Redis version string is at least major.minor; true as well when it cannot be parsed (assume modern). */
export function releaseAtLeast(version: string | undefined, major: number, minor = 0): boolean {
  const rel = parseRelease(version ?? '');
  if (!rel) return true;
  return rel[0] > major || (rel[0] === major && rel[1] >= minor);
}

/** The newest RDB version a Redis release (INFO redis_version, e.g. "7.0.15") loads; null when unparseable. */
export function maxRdbVersion(redisVersion: string): number | null {
  const rel = parseRelease(redisVersion);
  if (!rel) return null;
  const [major, minor] = rel;
  for (const [ma, mi, rdb] of RDB_BY_RELEASE) if (major > ma || (major === ma && minor >= mi)) return rdb;
  return 4;
}

/** The oldest Redis release ("7.0") that loads an RDB version, or null when no known release does. */
export function minRedisForRdb(rdbVersion: number): string | null {
  for (let i = RDB_BY_RELEASE.length - 1; i >= 0; i--) {
    const [ma, mi, rdb] = RDB_BY_RELEASE[i]!;
    if (rdb >= rdbVersion) return `${ma}.${mi}`;
  }
  return null;
}

/** The version number in an RDB file's 9-byte header ("REDIS0010" → 10). Throws integrityError when it is not one. */
export async function readRdbHeaderVersion(file: string, signal?: AbortSignal, compression?: 'zstd' | 'gzip'): Promise<number> {
  signal?.throwIfAborted();
  if (compression) return headerVersion(file, await compressedHead(file, compression));
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(9);
    const { bytesRead } = await fh.read(buf, 0, 9, 0);
    return headerVersion(file, buf.toString('latin1', 0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** The first 9 bytes of a compressed file, decompressed (the rest is not read). */
async function compressedHead(file: string, compression: 'zstd' | 'gzip'): Promise<string> {
  // The decompressor before the file is opened: one that cannot be made (core/zstd-napi.ts) leaves no descriptor open.
  const inflate = createDecompressor(compression);
  const src = createReadStream(file, { highWaterMark: 64 * 1024 });
  const plain = src.pipe(inflate);
  const got: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of plain) {
      got.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= 9) break;
    }
  } finally {
    src.destroy();
    plain.destroy();
  }
  return Buffer.concat(got).toString('latin1', 0, Math.min(n, 9));
}

function headerVersion(file: string, text: string): number {
  const m = /^REDIS(\d{4})$/.exec(text);
  if (!m) throw integrityError(`${file} is not an RDB file (its header is not "REDIS" and a 4-digit version)`);
  return Number(m[1]);
}
