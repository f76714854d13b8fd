import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config/load.js';
import { configTemplate } from '../../src/core/config/template.js';
import { TykdrError } from '../../src/core/errors.js';
import type { ObjectInfo } from '../../src/core/interfaces/store.js';
import { renderHtml, renderMarkdown } from '../../src/core/report/index.js';
import { checkTicket, evidenceRows, type Evidence } from '../../src/core/report/evidence.js';
import type { RestoreReport } from '../../src/core/restore/types.js';
import { evidenceCutoff, isEvidence, reportTime } from '../../src/core/retention/evidence.js';
import {
  findSigningKey, formatPublicKey, isWeakPublicKeyText, loadSigner, parsePublicKey, PUBLIC_KEY_PREFIX, writeSigningKeyFile,
} from '../../src/core/signing/keys.js';

const base = `
store: { kind: local, path: ./backups }
encryption: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] }
components:
  config: { kind: files, roots: [/opt/tyk-gateway] }
`;

function error(fn: () => unknown): TykdrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    return err as TykdrError;
  }
  throw new Error('expected an error');
}

async function rejection(p: Promise<unknown>): Promise<TykdrError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    return err as TykdrError;
  }
  throw new Error('expected a rejection');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-signing-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Ed25519 signing keys', () => {
  it('writes a PKCS#8 PEM with mode 0600, never overwrites it, and the public key it prints verifies its signatures', async () => {
    const file = path.join(dir, 'k1.pem');
    const k = await writeSigningKeyFile(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(k.publicKey).toMatch(/^tykdr-ed25519:[A-Za-z0-9+/]{43}=$/);
    expect(k.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(k.publicKeyPem).toContain('-----BEGIN PUBLIC KEY-----');
    const err = await rejection(writeSigningKeyFile(file));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(file);
    expect(err.fix).toMatch(/never overwritten/);

    const signer = await loadSigner(file);
    expect(signer.publicKey).toBe(k.publicKey);
    const data = Buffer.from('exact bytes\n');
    const sig = signer.sign(data);
    expect(sig).toHaveLength(64);
    const trusted = [parsePublicKey(k.publicKey, 'test'), parsePublicKey(k.publicKeyPem, 'pem')];
    expect(trusted[1]!.publicKey).toBe(k.publicKey);
    expect(findSigningKey(data, sig, trusted)?.fingerprint).toBe(k.fingerprint);
    const changed = Buffer.from(data);
    changed[0]! ^= 1;
    expect(findSigningKey(changed, sig, trusted)).toBeNull();
    const other = await loadSigner((await writeSigningKeyFile(path.join(dir, 'k2.pem'))).file);
    expect(findSigningKey(data, other.sign(data), trusted)).toBeNull();
  });

  it('the private key never shows up when the signer is printed or serialised', async () => {
    const file = path.join(dir, 'k3.pem');
    await writeSigningKeyFile(file);
    const signer = await loadSigner(file);
    const pemBody = (await import('node:fs')).readFileSync(file, 'utf8').split('\n')[1]!;
    expect(JSON.stringify(signer)).not.toContain(pemBody);
    expect((await import('node:util')).inspect(signer, { depth: 5 })).not.toContain(pemBody);
  });

  it('a bad key file is bad input naming the file, never its contents', async () => {
    const notKey = path.join(dir, 'not-a-key.pem');
    await writeFile(notKey, 'SECRET-LOOKING-CONTENT\n');
    const e1 = await rejection(loadSigner(notKey));
    expect(e1.exitCode).toBe(2);
    expect(e1.message).toContain(notKey);
    expect(e1.message).not.toContain('SECRET-LOOKING-CONTENT');
    const rsa = path.join(dir, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect((await rejection(loadSigner(rsa))).message).toMatch(/holds a rsa key, not Ed25519/);
    const missing = await rejection(loadSigner(path.join(dir, 'missing.pem')));
    expect(missing.message).toMatch(/ENOENT/);
    expect(missing.fix).toContain('tykdr key generate --signing');
  });

  it('refuses small-order public keys, with which forged signatures verify', () => {
    const identity = `${PUBLIC_KEY_PREFIX}${Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64')}`;
    expect(isWeakPublicKeyText(identity)).toBe(true);
    // Why it matters: OpenSSL accepts this key, and a signature anyone can make verifies for any message.
    const raw = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])]), format: 'der', type: 'spki' });
    expect(formatPublicKey(raw)).toBe(identity);
    const e = error(() => parsePublicKey(identity, 'signing.verifyKeys[0]'));
    expect(e.message).toContain('small-order');
    const c = error(() => parseConfig(`${base}signing: { verifyKeys: ["${identity}"] }\n`, '/x.yaml'));
    expect(c.message).toContain('signing.verifyKeys.0');
    expect(c.message).toContain('small-order');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    expect(isWeakPublicKeyText(formatPublicKey(publicKey))).toBe(false);
    expect(sign(null, Buffer.from('x'), privateKey)).toHaveLength(64);
  });
});

describe('signing and evidence config', () => {
  it('defaults: no signing, evidence kept 400 days', () => {
    const c = parseConfig(base, '/etc/tykdr/tykdr.yaml');
    expect(c.signing).toEqual({ keyFile: undefined, verifyKeys: [] });
    expect(c.evidence).toEqual({ keepWithin: '400d' });
  });

  it('resolves keyFile against the config folder and accepts tykdr-ed25519 keys', () => {
    const pub = formatPublicKey(generateKeyPairSync('ed25519').publicKey);
    const c = parseConfig(`${base}signing: { keyFile: ./keys/sign.pem, verifyKeys: ["${pub}"] }\nevidence: { keepWithin: 30d }\n`, '/etc/tykdr/tykdr.yaml');
    expect(c.signing).toEqual({ keyFile: '/etc/tykdr/keys/sign.pem', verifyKeys: [pub] });
    expect(c.evidence.keepWithin).toBe('30d');
  });

  it('a malformed verify key is an error naming the path, the value and the fix', () => {
    const e = error(() => parseConfig(`${base}signing: { verifyKeys: ["age1notakey"] }\n`, '/x.yaml'));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('signing.verifyKeys.0');
    expect(e.message).toContain('age1notakey');
    expect(e.message).toContain('tykdr key generate --signing');
    expect(error(() => parseConfig(`${base}evidence: { keepWithin: forever }\n`, '/x.yaml')).message).toContain('evidence.keepWithin');
  });

  it('the init template is valid with its signing and evidence sections uncommented', () => {
    const text = configTemplate({ recipient: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p' });
    const uncommented = text.replace(/^# (signing:|  keyFile:|  verifyKeys:|    - tykdr-ed25519:|evidence:)/gm, '$1');
    expect(uncommented).not.toBe(text);
    const c = parseConfig(uncommented, '/etc/tykdr/tykdr.yaml');
    expect(c.signing.keyFile).toBe('/etc/tykdr/signing-key.pem');
    expect(c.signing.verifyKeys).toHaveLength(1);
    expect(c.evidence.keepWithin).toBe('400d');
  });
});

const evidence: Evidence = {
  snapshot_id: '20260314T083900Z-9f8e7d',
  manifest_sha256: 'a'.repeat(64),
  manifest_signature: { status: 'verified', key_fingerprint: 'sha256:0123456789abcdef', detail: 'manifest signature verified with sha256:0123456789abcdef' },
  artifacts: [{ component: 'redis', name: 'redis.rdb.zst.age', sha256: 'b'.repeat(64), stored_bytes: 2048, plaintext_bytes: 8192 }],
  encryption: { scheme: 'age-v1', recipient_fingerprints: ['sha256:fedcba9876543210'], passphrase: false },
  plan: { name: 'full', file: 'plans/full.yaml', version: 2, sha256: 'c'.repeat(64) },
  operator: 'ops@dr-gw-01',
  trigger: 'schedule drill-full (schedule.drills.full)',
  ticket: 'CHG-<1234>|x',
  tool_version: '0.1.0',
  report_signing_key: 'tykdr-ed25519:xhjQuDCqzHvTWdSeTHMypi5Hc6l8NATyO7fY2zYED2g=',
};

function report(withEvidence: boolean): RestoreReport {
  return {
    format: 'tykdr-restore-report/1', id: '20260314T090300Z-a1b2c3', kind: 'drill',
    plan: { name: 'full', file: 'plans/full.yaml', version: 2 },
    snapshot: { id: evidence.snapshot_id, created_at: '2026-03-14T08:39:05Z', location: '/var/backups' },
    host: 'dr-gw-01', tool_version: '0.1.0', dry_run: false,
    incident_at: '2026-03-14T09:03:00Z', started_at: '2026-03-14T09:03:00Z', finished_at: '2026-03-14T09:04:00Z', status: 'succeeded',
    steps: [],
    rto: { objectiveSeconds: 900, achievedSeconds: 60, met: true, tier: 'critical', last_verified_at: '2026-03-14T09:04:00Z' },
    rpo: {},
    warnings: [],
    ...(withEvidence ? { evidence } : {}),
  };
}

describe('evidence in reports', () => {
  it('labels every evidence field, in both renderers, escaping what came from outside', () => {
    const labels = evidenceRows(evidence).map(([k]) => k);
    expect(labels).toEqual([
      'Snapshot', 'Manifest SHA-256', 'Manifest signature', 'Artifact redis', 'Encrypted to', 'Plan', 'Plan SHA-256', 'Operator',
      'Trigger', 'Ticket', 'tykdr version', 'Report signed by',
    ]);
    const md = renderMarkdown(report(true));
    expect(md).toContain('## Evidence');
    expect(md).toContain(`| Manifest SHA-256 | \`${'a'.repeat(64)}\` |`);
    expect(md).toContain(`redis.rdb.zst.age: SHA-256 ${'b'.repeat(64)}, 2.0 KiB stored (2,048 bytes)`);
    expect(md).toContain('recipient fingerprint(s) sha256:fedcba9876543210');
    expect(md).toContain('| Operator | `ops@dr-gw-01` |');
    expect(md).toContain('| Trigger | `schedule drill-full (schedule.drills.full)` |');
    expect(md).toContain('| Ticket | `CHG-<1234>\\|x` |');
    const html = renderHtml(report(true));
    expect(html).toContain('<section id="evidence"><h2>Evidence</h2>');
    expect(html).toContain('<th scope="row">Plan SHA-256</th><td><code>' + 'c'.repeat(64) + '</code></td>');
    expect(html).toContain('CHG-&#60;1234&#62;|x');
    expect(html).not.toContain('CHG-<1234>');
  });

  it('reports without evidence (written by older versions) render without the section', () => {
    expect(renderMarkdown(report(false))).not.toContain('## Evidence');
    expect(renderHtml(report(false))).not.toContain('id="evidence"');
  });

  it('--ticket takes one line of printable text and names a bad value', () => {
    expect(checkTicket(undefined)).toBeNull();
    expect(checkTicket(' CHG-1234 ')).toBe('CHG-1234');
    for (const bad of ['', '   ', 'a\nb', 'x'.repeat(201)]) {
      const e = error(() => checkTicket(bad));
      expect(e.exitCode).toBe(2);
      expect(e.message).toContain('--ticket');
      expect(e.fix).toContain('--ticket CHG-1234');
    }
  });
});

describe('evidence retention', () => {
  const now = new Date('2027-06-01T00:00:00Z');
  const info = (name: string, modified: string): ObjectInfo => ({ key: `reports/20260101T000000Z-abcdef/${name}`, size: 1, modified: new Date(modified) });

  it('a report is evidence while younger than keepWithin, by the later of its store time and its run id', () => {
    const cutoff = evidenceCutoff(now, { keepWithin: '400d' });
    expect(cutoff.toISOString()).toBe('2026-04-27T00:00:00.000Z');
    expect(isEvidence(info('drill-20260601T000000Z-aaaaaa.json', '2026-06-01T00:00:00Z'), cutoff)).toBe(true);
    expect(isEvidence(info('drill-20250101T000000Z-aaaaaa.json', '2025-01-01T00:00:00Z'), cutoff)).toBe(false);
    // Copied later (newer store time): kept by the store time.
    expect(isEvidence(info('drill-20250101T000000Z-aaaaaa.json.sig', '2027-01-01T00:00:00Z'), cutoff)).toBe(true);
    // A name newer than the store time keeps it longer, never shorter.
    expect(reportTime(info('restore-20270101T000000Z-aaaaaa.md', '2025-01-01T00:00:00Z')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(evidenceCutoff(now, undefined).getTime()).toBe(cutoff.getTime());
  });
});
