import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load.js';
import { EXIT_CODE_TABLE, isAbortError } from '../../src/core/errors.js';
import { verifySnapshots, type ObjectCheck } from '../../src/core/integrity/verify-snapshots.js';
import { runCli } from '../helpers/cli.js';
import { startMinio, type Minio } from '../helpers/minio.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';
import { backends } from '../../src/wiring.js';

const BIG = 12 * 1024 * 1024;
let ws: Workspace;
let tree: string;
let minio: Minio;
let other: string;

const env = () => ({ TEST_S3_KEY: minio.accessKeyId, TEST_S3_SECRET: minio.secretAccessKey, TEST_PASSPHRASE: 'correct horse battery staple' });

beforeAll(async () => {
  [ws, minio] = await Promise.all([makeWorkspace(), startMinio()]);
  tree = await mkdtemp(path.join(tmpdir(), 'tykdr-verify-tree-'));
  await mkdir(path.join(tree, 'gw'));
  await mkdir(path.join(tree, 'blobs'));
  await writeFile(path.join(tree, 'gw', 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: 'verify-test' }));
  // Incompressible, and bigger than any buffer on the way: the object streams through many age chunks.
  await writeFile(path.join(tree, 'blobs', 'big.bin'), randomBytes(BIG));
  other = path.join(ws.dir, 'other-identity.txt');
  const gen = await runCli(['key', 'generate', '--output', other]);
  expect(gen.code, gen.stderr).toBe(0);
  await minio.createBucket('verify');
  const components = `components:
  config: { kind: files, roots: [${path.join(tree, 'gw')}] }
  blobs: { kind: files, roots: [${path.join(tree, 'blobs')}] }
`;
  const enc = `encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }\n`;
  await ws.writeConfig('local.yaml', `store: { kind: local, path: ./store }\n${enc}${components}`);
  await ws.writeConfig('noid.yaml', `store: { kind: local, path: ./store }\nencryption: { recipients: [${ws.recipient}] }\n${components}`);
  await ws.writeConfig('pass.yaml', `store: { kind: local, path: ./store-pass }\nencryption: { passphrase: { env: TEST_PASSPHRASE } }\n${components}`);
  await ws.writeConfig(
    's3.yaml',
    `store:
  kind: s3
  bucket: verify
  prefix: tyk
  endpoint: ${minio.endpoint}
  forcePathStyle: true
  accessKeyId: \${TEST_S3_KEY}
  secretAccessKey: \${TEST_S3_SECRET}
  partSizeMiB: 5
${enc}${components}`,
  );
});

afterAll(async () => {
  await Promise.all([ws?.cleanup(), minio?.stop(), tree && rm(tree, { recursive: true, force: true })]);
});

async function backup(config: string): Promise<{ id: string; manifest: any }> {
  const res = await runCli(['backup', '-c', path.join(ws.dir, config), '--json'], { env: env() });
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

const verify = (config: string, ...args: string[]) => runCli(['verify', '-c', path.join(ws.dir, config), ...args], { env: env() });

/** Flips one bit of a local file at `at` (a fraction of its length) and returns a restore function. */
async function flipByte(file: string, at: number): Promise<() => Promise<void>> {
  await copyFile(file, `${file}.orig`);
  const b = await readFile(file);
  b[Math.floor(b.length * at)]! ^= 0x01;
  await writeFile(file, b);
  return () => copyFile(`${file}.orig`, file).then(() => unlink(`${file}.orig`));
}

describe('tykdr verify on a local store', () => {
  let a: { id: string; manifest: any };
  let b: { id: string; manifest: any };
  const objectFile = (id: string, component: string, m: any) => path.join(ws.storeDir, 'snapshots', id, m.components[component].artifact.name);

  beforeAll(async () => {
    a = await backup('local.yaml');
    b = await backup('local.yaml');
  });

  it('verifies the latest snapshot by default: every object ok, exit 0', async () => {
    const res = await verify('local.yaml');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^ok\\s+${b.id}\\s+blobs\\.tar\\.zst\\.age\\s+12\\.0 MiB stored, 12\\.0 MiB plaintext$`, 'm'));
    expect(res.stdout).toMatch(new RegExp(`^ok\\s+${b.id}\\s+config\\.tar\\.zst\\.age`, 'm'));
    expect(res.stdout).toContain('All 2 object(s) in 1 snapshot(s) verified');
  });

  it('--all --json checks every object of every complete snapshot and skips incomplete ones', async () => {
    const broken = path.join(ws.storeDir, 'snapshots', '20260101T000000Z-abcdef');
    await mkdir(broken, { recursive: true });
    await writeFile(path.join(broken, 'config.tar.zst.age'), 'partial');
    try {
      const res = await verify('local.yaml', '--all', '--json');
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout);
      expect(out).toMatchObject({ ok: true, checked: 4, failed: 0, sample_percent: 100 });
      expect(out.snapshots.map((s: any) => s.id).sort()).toEqual([a.id, b.id].sort());
      expect(out.skipped).toEqual([{ id: '20260101T000000Z-abcdef', reason: 'no manifest: the backup did not finish' }]);
      for (const o of out.objects) {
        const art = (o.snapshot === a.id ? a : b).manifest.components[o.component].artifact;
        expect(o).toMatchObject({ status: 'ok', stored_bytes: art.stored_bytes, plaintext_bytes: art.plaintext_bytes });
      }
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });

  it('--sample checks a random share of the (snapshot, object) pairs, at least one', async () => {
    const some = JSON.parse((await verify('local.yaml', '--all', '--sample', '50', '--json')).stdout);
    expect(some.checked).toBe(2);
    const one = JSON.parse((await verify('local.yaml', '--all', '--sample', '1', '--json')).stdout);
    expect(one.checked).toBe(1);
    const none = await verify('local.yaml', '--all', '--sample', '0');
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('Nothing checked');
    const bad = await verify('local.yaml', '--sample', '150');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--sample "150" is not a percentage between 0 and 100');
  });

  it('finds a flipped byte: the sha256 check failed, the object was altered; exit 5', async () => {
    const undo = await flipByte(objectFile(b.id, 'blobs', b.manifest), 0.5);
    try {
      const res = await verify('local.yaml', b.id);
      expect(res.code).toBe(5);
      expect(res.stdout).toMatch(new RegExp(`^FAILED\\s+${b.id}\\s+blobs\\.tar\\.zst\\.age: .*sha256 check failed: .*the object was altered or replaced in the store$`, 'm'));
      expect(res.stdout).toMatch(new RegExp(`^ok\\s+${b.id}\\s+config\\.tar\\.zst\\.age`, 'm'));
      expect(res.stdout).toContain('1 of 2 object(s) in 1 snapshot(s) FAILED verification');
      // The other snapshot is untouched.
      expect((await verify('local.yaml', a.id)).code).toBe(0);
    } finally {
      await undo();
    }
  });

  it('a flipped byte in the age header is still reported as an altered object', async () => {
    const undo = await flipByte(objectFile(b.id, 'config', b.manifest), 0.05);
    try {
      const out = JSON.parse((await verify('local.yaml', b.id, '--json')).stdout);
      const bad = out.objects.find((o: any) => o.component === 'config');
      expect(bad).toMatchObject({ status: 'failed', kind: 'integrityError' });
      expect(bad.message).toMatch(/sha256 check failed.*altered/);
    } finally {
      await undo();
    }
  });

  it('verify and restore give the same reason for the same flipped byte (in the age header and in the body)', async () => {
    for (const at of [0.05, 0.5]) {
      const undo = await flipByte(objectFile(b.id, 'config', b.manifest), at);
      const to = await mkdtemp(path.join(tmpdir(), 'tykdr-verify-to-'));
      try {
        const checked = JSON.parse((await verify('local.yaml', b.id, '--json')).stdout);
        const reason = checked.objects.find((o: any) => o.component === 'config').message as string;
        expect(reason).toMatch(new RegExp(`^config\\.tar\\.zst\\.age in snapshot ${b.id}: sha256 check failed: the store holds sha256 [0-9a-f]{64}, the manifest says ${b.manifest.components.config.artifact.sha256} \\(both \\d+ bytes\\)`));
        const restored = await runCli(['restore', '-c', path.join(ws.dir, 'local.yaml'), '--plan', 'gateway', '--snapshot', b.id, '--to', to, '--yes'], { env: env() });
        expect(restored.code, restored.stderr).toBe(5);
        expect(`${restored.stdout}${restored.stderr}`).toContain(reason);
      } finally {
        await undo();
        await rm(to, { recursive: true, force: true });
      }
    }
  });

  it('a size that differs from the manifest with the same bytes is named as the size check, with both values', async () => {
    const file = path.join(ws.storeDir, 'snapshots', a.id, 'manifest.json');
    const original = await readFile(file, 'utf8');
    const m = JSON.parse(original);
    const size = m.components.config.artifact.stored_bytes as number;
    m.components.config.artifact.stored_bytes = size + 1;
    await writeFile(file, JSON.stringify(m, null, 2));
    try {
      const out = JSON.parse((await verify('local.yaml', a.id, '--json')).stdout);
      const bad = out.objects.find((o: any) => o.component === 'config');
      expect(bad).toMatchObject({ status: 'failed', kind: 'integrityError' });
      expect(bad.message).toContain(`size check failed: the store holds ${size} bytes, the manifest says ${size + 1} (sha256 ${m.components.config.artifact.sha256} matches)`);
      expect(bad.message).not.toContain('sha256 check failed');
    } finally {
      await writeFile(file, original);
    }
  });

  it('finds a missing object: listed in the manifest but missing from the store', async () => {
    const file = objectFile(a.id, 'config', a.manifest);
    await copyFile(file, `${file}.keep`);
    await unlink(file);
    try {
      const res = await verify('local.yaml', a.id, '--json');
      expect(res.code).toBe(5);
      const out = JSON.parse(res.stdout);
      expect(out.ok).toBe(false);
      const missing = out.objects.find((o: any) => o.component === 'config');
      expect(missing.message).toBe(`object snapshots/${a.id}/config.tar.zst.age listed in the manifest is missing from the store (${ws.storeDir})`);
      expect(out.objects.find((o: any) => o.component === 'blobs').status).toBe('ok');
    } finally {
      await copyFile(`${file}.keep`, file);
      await unlink(`${file}.keep`);
    }
  });

  it('with the wrong identity: no identity matches, exit 5', async () => {
    const res = await verify('local.yaml', b.id, '--identity', other);
    expect(res.code).toBe(5);
    expect(res.stdout).toMatch(/FAILED .*blobs\.tar\.zst\.age: .*no identity matches any recipient of this file/);
    expect(res.stdout).toMatch(/FAILED .*config\.tar\.zst\.age: .*no identity matches any recipient of this file/);
  });

  it('without any identity: bad input naming the fix, before anything is read', async () => {
    const res = await verify('noid.yaml');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('pass --identity FILE, or set encryption.identityFile');
    expect((await verify('noid.yaml', '--identity', ws.identityFile)).code).toBe(0);
  });

  it('an unknown snapshot id is bad input', async () => {
    const res = await verify('local.yaml', '20200101T000000Z-000000');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('not found');
  });

  it('verifies passphrase-encrypted snapshots with the configured passphrase', async () => {
    await backup('pass.yaml');
    const res = await verify('pass.yaml');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('All 2 object(s)');
  });
});

describe('verifySnapshots (the service the daemon calls)', () => {
  it('reports progress per object and the bytes read', async () => {
    const config = await loadConfig(path.join(ws.dir, 'local.yaml'));
    const done: ObjectCheck[] = [];
    let bytes = 0;
    const result = await verifySnapshots({
      backends,
      config,
      snapshots: ['latest'],
      progress: { objectDone: (c) => done.push(c), bytes: (n) => (bytes += n) },
    });
    expect(result.ok).toBe(true);
    expect(done).toEqual(result.objects);
    expect(bytes).toBe(result.objects.reduce((n, o) => n + o.storedBytes, 0));
  });

  it('stops promptly when its signal aborts', async () => {
    const config = await loadConfig(path.join(ws.dir, 'local.yaml'));
    const ac = new AbortController();
    let seen = 0;
    const err = await verifySnapshots({
      backends,
      config,
      snapshots: 'all',
      signal: ac.signal,
      progress: {
        bytes: (n) => {
          seen += n;
          if (seen > 1024 * 1024) ac.abort();
        },
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isAbortError(err), String(err)).toBe(true);
    expect(seen).toBeLessThan(BIG);
  });
});

describe('tykdr verify on S3 (MinIO)', () => {
  let snap: { id: string; manifest: any };
  const key = (component: string) => `tyk/snapshots/${snap.id}/${snap.manifest.components[component].artifact.name}`;

  beforeAll(async () => {
    snap = await backup('s3.yaml');
  });

  it('passes on an intact snapshot', async () => {
    const res = await verify('s3.yaml', '--all');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('All 2 object(s) in 1 snapshot(s) verified in s3://verify/tyk/');
  });

  it('finds an altered object and a missing one', async () => {
    const got = await minio.client.send(new GetObjectCommand({ Bucket: 'verify', Key: key('blobs') }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    bytes[bytes.length - 100]! ^= 0x80;
    await minio.client.send(new PutObjectCommand({ Bucket: 'verify', Key: key('blobs'), Body: bytes }));
    await minio.client.send(new DeleteObjectCommand({ Bucket: 'verify', Key: key('config') }));
    const res = await verify('s3.yaml', snap.id, '--json');
    expect(res.code).toBe(5);
    const out = JSON.parse(res.stdout);
    const byComponent = Object.fromEntries(out.objects.map((o: any) => [o.component, o]));
    expect(byComponent.blobs.message).toMatch(/sha256 check failed: .*the object was altered or replaced in the store/);
    expect(byComponent.config.message).toBe(`object snapshots/${snap.id}/config.tar.zst.age listed in the manifest is missing from the store (s3://verify/tyk/)`);
  });
});

describe('tykdr verify --help', () => {
  it('has examples, --config, --json and the exit-code table', async () => {
    const res = await runCli(['verify', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('EXAMPLES');
    expect(res.stdout).toContain('--config');
    expect(res.stdout).toContain('--json');
    for (const e of EXIT_CODE_TABLE) expect(res.stdout).toContain(e.meaning.slice(0, 40));
  });
});
