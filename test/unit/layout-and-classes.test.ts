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
