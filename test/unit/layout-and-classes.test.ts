import { describe, expect, it } from 'vitest';
import { artifactName, isSnapshotId, manifestKey, newSnapshotId, parseKey } from '../../src/core/layout.js';
import { classifyKey } from '../../src/core/tyk/key-classes.js';
import { fingerprintSecret, secretMatchesFingerprint, tykConfFacts } from '../../src/core/tyk/tyk-conf.js';
import { EXIT_CODE_TABLE, EXIT_CODES } from '../../src/core/errors.js';

describe('layout', () => {
  it('ids sort by time and parse back', () => {
    const a = newSnapshotId(new Date('2026-01-02T03:04:05.678Z'));
    const b = newSnapshotId(new Date('2026-01-02T03:04:06Z'));
    expect(a).toMatch(/^20260102T030405Z-[0-9a-f]{6}$/);
    expect(isSnapshotId(a)).toBe(true);
    expect([b, a].sort()).toEqual([a, b]);
    expect(parseKey(manifestKey(a))).toEqual({ id: a, name: 'manifest.json' });
    expect(parseKey('snapshots/nope/manifest.json')).toBeNull();
    expect(artifactName('redis', 'rdb', 'zstd')).toBe('redis.rdb.zst.age');
    expect(artifactName('config', 'tar', 'gzip')).toBe('config.tar.gz.age');
  });
});

describe('Tyk key classes', () => {
  it.each([
    ['apikey-abc', 'must'],
    ['orgkey.org1', 'must'],
    ['oauth-data.api1.oauth-clientid.c1', 'must'],
    ['oauth-data.api1.oauth-clientset.org1', 'must'],
    ['oauth-data.api1.oauth-client-index.org1', 'must'],
    ['oauth-data.api1.oauth-access.t', 'should'],
    ['oauth-data.api1.oauth-refresh.t', 'should'],
    ['oauth-data.api1.oauth-client-tokens.c1', 'should'],
    ['oauth-data.api1.oauth-authorize.code', 'ephemeral'],
    ['cert-raw-org1abc', 'must'],
    ['cert-org1-index', 'must'],
    ['cert-org1-index-migrated', 'must'],
    ['tyk-admin-api-x', 'should'],
    ['coprocess-data:x', 'should'],
    ['quota-abc', 'quota'],
    ['rate-limit-abc', 'ephemeral'],
    ['cache-x', 'ephemeral'],
    ['host-checker:x', 'ephemeral'],
    ['analytics-tyk-system-analytics', 'analytics'],
    ['rpc:node-policy-backup:x', 'mdcb'],
    ['something-else', 'other'],
  ])('%s is %s', (key, cls) => {
    expect(classifyKey(key)).toBe(cls);
    expect(classifyKey(Buffer.from(key))).toBe(cls);
  });
});

describe('Tyk key classes on raw bytes', () => {
  it('give the rules\' verdict on the key\'s latin1 text (its first 512 bytes) for every prefix and ending', () => {
    const heads = [
      'apikey-', 'orgkey.', 'oauth-data.', 'oauth-data.x.oauth-authorize.', 'oauth-data.a.oauth-clientid.', 'oauth-data.a.oauth-refresh.',
      'cert-raw-', 'cert-', 'cert-o-index', 'tyk-admin-api-', 'coprocess-data:', 'quota-', 'analytics-tyk-system-analytics',
      'rpc:node-definition-backup:', 'rpc:node-', 'rate-limit-', 'cache-', 'host-checker:', 'livenesscheck-', 'webhook.cache.',
      'redis-lock-', 'gateway-lock', 'tyk-host-checker', 'tyk-uptime', 'apikey', 'quota', 'tyk-', 'x', '', '\u00ff', 'Apikey-',
    ];
    const tails = ['', 'abc', '-lock', ':lock', '-lockx', 'lock', 'cooldown', 'x-cooldown-y', '-index', '-index-migrated', '.oauth-authorize.t', '\u0000\u00ff'];
    let checked = 0;
    for (const h of heads) {
      for (const t of tails) {
        for (const pad of [0, 1, 600]) {
          // pad 600 puts the tail past byte 512, where the rules no longer see it.
          const key = Buffer.from(h + 'z'.repeat(pad) + t, 'latin1');
          expect([h, pad, t, classifyKey(key)]).toEqual([h, pad, t, classifyKey(key.toString('latin1', 0, Math.min(key.length, 512)))]);
          checked++;
        }
      }
    }
    expect(checked).toBe(31 * 12 * 3);
    expect(classifyKey(Buffer.from('apikey-abc'))).toBe('must');
    expect(classifyKey(Buffer.from('x'.repeat(507) + '-lock'))).toBe('ephemeral');
    expect(classifyKey(Buffer.from('x'.repeat(508) + '-lock'))).toBe('other');
  });
});

describe('tyk.conf facts', () => {
  it('records hash settings and a salted fingerprint, never the secret', () => {
    const f = tykConfFacts('opt/tyk/tyk.conf', JSON.stringify({ secret: 's3cr3t', hash_keys: true, hash_key_function: 'murmur64' }));
    expect(f.hash_keys).toBe(true);
    expect(f.hash_key_function).toBe('murmur64');
    expect(JSON.stringify(f)).not.toContain('s3cr3t');
    expect(secretMatchesFingerprint('s3cr3t', f.secret_fingerprint!)).toBe(true);
    expect(secretMatchesFingerprint('other', f.secret_fingerprint!)).toBe(false);
    expect(fingerprintSecret('s3cr3t')).not.toBe(f.secret_fingerprint); // salted
    expect(tykConfFacts('t', '{}').hash_key_function).toBe('murmur32');
  });
});

describe('exit codes', () => {
  it('the table covers every kind exactly once with its code', () => {
    expect(EXIT_CODE_TABLE.map((e) => e.kind).sort()).toEqual(Object.keys(EXIT_CODES).sort());
    for (const e of EXIT_CODE_TABLE) expect(EXIT_CODES[e.kind]).toBe(e.code);
  });
});
