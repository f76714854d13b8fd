import { describe, expect, it } from 'vitest';
import { buildPayload } from '../../src/backends/redis/formats/dump-payload.js';
import {
  acceptsDumpVersion, dumpPayloadVersion, maxDumpVersion, parseServerInfo, serverName, type ServerInfo,
} from '../../src/backends/redis/protocol/server-info.js';

/** INFO server as the servers print it (CRLF, section header, unrelated fields), trimmed to what matters. */
const REDIS_INFO = '# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\nos:Linux\r\n';
const VALKEY_INFO = '# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\nredis_git_sha1:00000000\r\n';

const redis = (version: string): ServerInfo => ({ product: 'Redis', version, redisCompatVersion: version });
const valkey = (version: string): ServerInfo => ({ product: 'Valkey', version, redisCompatVersion: '7.2.4' });

describe('parseServerInfo', () => {
  it('reads Redis from redis_version alone', () => {
    expect(parseServerInfo(REDIS_INFO)).toEqual({ product: 'Redis', version: '7.0.15', redisCompatVersion: '7.0.15' });
  });

  it('reads Valkey from valkey_version, keeping the Redis version it reports for compatibility', () => {
    expect(parseServerInfo(VALKEY_INFO)).toEqual({ product: 'Valkey', version: '8.1.8', redisCompatVersion: '7.2.4' });
  });

  it('takes the flat record parseInfo makes as well as the text', () => {
    expect(parseServerInfo({ redis_version: '7.2.4', valkey_version: '8.0.1' }).version).toBe('8.0.1');
    // server_name alone (no valkey_version) still says Valkey; its own version is then unknown.
    expect(parseServerInfo({ redis_version: '7.2.4', server_name: 'valkey' })).toEqual({ product: 'Valkey', version: 'unknown', redisCompatVersion: '7.2.4' });
    expect(parseServerInfo({})).toEqual({ product: 'Redis', version: 'unknown', redisCompatVersion: 'unknown' });
  });

  it('names the server for people', () => {
    expect(serverName(parseServerInfo(VALKEY_INFO))).toBe('Valkey 8.1.8');
    expect(serverName(parseServerInfo(REDIS_INFO))).toBe('Redis 7.0.15');
  });
});

describe('maxDumpVersion and acceptsDumpVersion', () => {
  it('follows the Redis releases: 6.2 → 9, 7.0 → 10, 7.2 → 11, 7.4 and 8.0 → 12', () => {
    const got = ['6.2.14', '7.0.15', '7.2.4', '7.4.2', '8.0.2', '5.0.14'].map((v) => maxDumpVersion(redis(v)));
    expect(got).toEqual([9, 10, 11, 12, 12, 9]);
  });

  it('gives Valkey 7.2 to 8.x version 11 (not what its redis_version would suggest for 12) and Valkey 9 version 80', () => {
    expect(['7.2.5', '8.0.1', '8.1.8'].map((v) => maxDumpVersion(valkey(v)))).toEqual([11, 11, 11]);
    expect(maxDumpVersion(valkey('9.0.0'))).toBe(80);
    expect(maxDumpVersion(valkey('unknown'))).toBeNull();
    expect(maxDumpVersion(redis('garbage'))).toBeNull();
  });

  it('lets Redis take every version up to its own, and Valkey never Redis 7.4+\'s 12 to 79', () => {
    expect(acceptsDumpVersion(redis('7.4.0'), 12)).toBe(true);
    expect(acceptsDumpVersion(redis('7.4.0'), 13)).toBe(false);
    expect(acceptsDumpVersion(redis('6.2.14'), 10)).toBe(false);
    expect(acceptsDumpVersion(valkey('8.1.8'), 11)).toBe(true);
    expect(acceptsDumpVersion(valkey('8.1.8'), 12)).toBe(false);
    expect(acceptsDumpVersion(valkey('9.0.0'), 12)).toBe(false);
    expect(acceptsDumpVersion(valkey('9.0.0'), 79)).toBe(false);
    expect(acceptsDumpVersion(valkey('9.0.0'), 80)).toBe(true);
    expect(acceptsDumpVersion(valkey('9.0.0'), 9)).toBe(true);
    expect(acceptsDumpVersion(valkey('unknown'), 9)).toBe(false);
  });
});

describe('dumpPayloadVersion', () => {
  it('reads the 2-byte little-endian version before the CRC', () => {
    expect(dumpPayloadVersion(buildPayload(0, Buffer.from([5, 104, 101, 108, 108, 111]), 10))).toBe(10);
    expect(dumpPayloadVersion(buildPayload(0, Buffer.from([0]), 0x0150))).toBe(0x0150);
    expect(() => dumpPayloadVersion(Buffer.alloc(9))).toThrow(/at least 10 bytes/);
  });
});
