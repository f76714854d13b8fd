import { parseInfo } from './connection.js';
import { maxRdbVersion } from '../formats/rdb-versions.js';

/**
 * Which server a Redis-protocol endpoint is, from its INFO server section. Pure: no I/O.
 *
 * Valkey answers INFO as Redis 7.2.4 (redis_version:7.2.4, for clients that gate features on it) and adds
 * server_name:valkey and valkey_version:<its own release>. Redis has neither field.
 */
export interface ServerInfo {
  product: 'Redis' | 'Valkey';
  /** The product's own release: redis_version for Redis, valkey_version for Valkey ("unknown" when absent). */
  version: string;
  /** The Redis release the server says it is compatible with (redis_version): what Redis clients see. */
  redisCompatVersion: string;
}

/** Parses INFO (the server section, or all of it) given as text or as the flat record parseInfo makes. */
export function parseServerInfo(info: string | Record<string, string>): ServerInfo {
  const f = typeof info === 'string' ? parseInfo(info) : info;
  const redisCompatVersion = f.redis_version?.trim() || 'unknown';
  const valkey = f.valkey_version?.trim();
  if (valkey || f.server_name?.trim().toLowerCase() === 'valkey') {
    return { product: 'Valkey', version: valkey || 'unknown', redisCompatVersion };
  }
  return { product: 'Redis', version: redisCompatVersion, redisCompatVersion };
}

/** "Valkey 8.1.8", "Redis 7.0.15": for messages and reports. */
export function serverName(s: ServerInfo): string {
  return `${s.product} ${s.version}`;
}

/**
 * Newest RDB version of a DUMP payload Valkey accepts by default (rdb-version-check strict), by release.
 * Newest first; a release between two rows accepts what the older row does.
 *
 * - 7.2 and 8.x: 11. Valkey forked from Redis 7.2.4 and kept its RDB version 11 through 8.x. Measured on
 *   Valkey 8.1.8 (test/integration/server-matrix.test.ts): DUMP writes version 11; RESTORE takes every version
 *   up to 11 and refuses 12 (Redis 7.4's) and above. With `rdb-version-check relaxed` it also takes 80 and above (future Valkey
 *   formats) but still refuses 12 to 79, the range Valkey leaves to Redis.
 * - 9.0 and later: 80, the first version of Valkey's own RDB line (files start "VALKEY080"). From Valkey's
 *   release notes and issue tracker; not measured here.
 */
const VALKEY_DUMP_BY_RELEASE: ReadonlyArray<readonly [major: number, minor: number, rdb: number]> = [
  [9, 0, 80],
  [7, 2, 11],
];

/**
 * The newest DUMP/RDB version a server accepts in RESTORE (and loads from an RDB file): Redis 6.2 → 9,
 * 7.0 → 10, 7.2 → 11, 7.4 and 8.0–8.4 → 12 (the table in rdb-versions.ts), Valkey 7.2–8.x → 11, Valkey 9 → 80.
 * null when the version string is not understood.
 */
export function maxDumpVersion(s: ServerInfo): number | null {
  if (s.product === 'Redis') return maxRdbVersion(s.version);
  const m = /^(\d+)\.(\d+)/.exec(s.version);
  if (!m) return null;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  for (const [ma, mi, rdb] of VALKEY_DUMP_BY_RELEASE) if (major > ma || (major === ma && minor >= mi)) return rdb;
  return null;
}

/**
 * True when the server's RESTORE takes a payload of this RDB version (default settings). Redis takes every
 * version up to its own. Valkey also refuses 12 to 79 whatever its own version: that range is Redis's
 * (7.4 and later), whose formats Valkey does not follow (measured on 8.1.8, in strict and relaxed mode).
 */
export function acceptsDumpVersion(s: ServerInfo, rdbVersion: number): boolean {
  const max = maxDumpVersion(s);
  if (max === null || rdbVersion > max) return false;
  return s.product === 'Redis' || rdbVersion <= 11 || rdbVersion >= 80;
}

/** The RDB version in a DUMP payload's trailer: the 2 little-endian bytes before the 8-byte CRC-64. */
export function dumpPayloadVersion(payload: Uint8Array): number {
  if (payload.length < 10) throw new Error(`a DUMP payload is at least 10 bytes (value, version, CRC-64); this one is ${payload.length}`);
  const at = payload.length - 10;
  return payload[at]! | (payload[at + 1]! << 8);
}
