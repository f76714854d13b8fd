import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { TykdrError } from '../../src/core/errors.js';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import type { StoreEvent } from '../../src/core/interfaces/store.js';
import { Secret } from '../../src/core/secret.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { useCleanups } from '../helpers/cleanups.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { startMinioBehindProxy, type Minio } from '../helpers/minio.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, writingObjectOf, type Workspace } from '../helpers/workspace.js';

/**
 * A TCP fault proxy (test/helpers/fault-proxy.ts) between tykdr and MinIO: connection resets, stalls and a
 * store that accepts and never answers, during backup (uploads) and restore (downloads). Every run must end
 * in bounded time (the guards are generous limits, not speed claims) with the documented exit code and a
 * message that names the store; short stalls are survived and reported; signals end the process within
 * TYKDR_GRACE; what a killed upload leaves is swept by prune.
 */
const { cleanups } = useCleanups();
const BUCKET = 'faults';
const GUARD_MS = 30_000; // "ends in bounded time": far above what any of these runs needs
/** More than any small request (HEAD, LIST, a manifest) carries on one connection, less than an artifact. */
const MID_TRANSFER = 20_000;

let minio: Minio;
let proxy: FaultProxy;
let ws: Workspace;
let root: string;
let env: NodeJS.ProcessEnv;

/** tykdr.yaml for the S3 store behind the proxy; small limits keep the faults quick. */
function s3Config(name: string, opts: { stall?: string; prefix?: string; tree?: string; extraStore?: string; staging?: string } = {}): Promise<string> {
  return ws.writeConfig(
    name,
    `store: { kind: s3, bucket: ${BUCKET}, prefix: "${opts.prefix ?? 'tyk'}", endpoint: "${proxy.endpoint}", forcePathStyle: true, ` +
      `accessKeyId: ${minio.accessKeyId}, secretAccessKey: "\${S3_SECRET}", stallTimeout: ${opts.stall ?? '3s'}, connectTimeout: 2s, maxAttempts: 4${opts.extraStore ?? ''} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
retention: { incompleteGrace: 1s }
components:
  config: { kind: files, roots: [${opts.tree ?? root}], role: dashboard }
restore: { reportDir: ./reports${opts.staging ? `, stagingDir: ${opts.staging}` : ''} }
`,
  );
}

/** Runs the CLI and measures how long it took; fails the test if it ran past the guard. */
async function timed(args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<CliResult & { ms: number }> {
  const t0 = Date.now();
  const res = await runCli(args, { ...opts, env: { ...env, ...opts.env } });
  const ms = Date.now() - t0;
  expect(ms, `${args.join(' ')} ran ${ms} ms (guard ${GUARD_MS} ms)\n${res.stderr}`).toBeLessThan(GUARD_MS);
  expect(res.stdout + res.stderr).not.toContain(minio.secretAccessKey);
  return { ...res, ms };
}

async function objectKeys(prefix: string): Promise<string[]> {
  const out = await minio.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function multipartUploads(prefix: string): Promise<string[]> {
  // Listed for the whole bucket and filtered: MinIO lists multipart uploads only per exact key or bucket-wide.
  const out = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return (out.Uploads ?? []).map((u) => u.Key!).filter((k) => k.startsWith(prefix));
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `tykdr ARGS` as a child that the test signals; its stdout and stderr are kept together, in order. */
function spawnCli(args: string[], grace: string) {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), ...args], {
    env: { ...process.env, ...env, NO_COLOR: '1', TYKDR_GRACE: grace },
    cwd: ws.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => void child.kill('SIGKILL'));
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, output: () => output };
}

beforeAll(async () => {
  let servers: { minio: Minio; proxy: FaultProxy };
  [servers, ws] = await Promise.all([startMinioBehindProxy(BUCKET, cleanups), makeWorkspace()]);
  ({ minio, proxy } = servers);
  cleanups.push(() => ws.cleanup());
  env = { S3_SECRET: minio.secretAccessKey };
  root = path.join(ws.dir, 'dashboard');
  await mkdir(root);
  await writeFile(path.join(root, 'tyk_analytics.conf'), JSON.stringify({ listen_port: 3000 }));
  // Incompressible, so the stored object is as large (about 300 KB: one PutObject).
  await writeFile(path.join(root, 'blob.bin'), randomBytes(300_000));
});

describe('the stall clock runs only while an operation waits on the store', () => {
  const store = (events: StoreEvent[], endpoint = minio.endpoint) =>
    new S3Store(
      {
        kind: 's3',
        bucket: BUCKET,
        prefix: 'clock',
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        accessKeyId: minio.accessKeyId,
        secretAccessKey: new Secret(minio.secretAccessKey),
        partSizeMiB: 5,
        uploadConcurrency: 2,
        downloadConcurrency: 4,
        stallTimeout: '1s',
        connectTimeout: '2s',
        maxAttempts: 4,
      },
      { onEvent: (e) => events.push(e) },
    );
  const data = randomBytes(400_000);

  it('an upload whose source pauses longer than stallTimeout is not stalled', async () => {
    const events: StoreEvent[] = [];
    async function* slowSource() {
      yield data.subarray(0, 100_000);
      // The source (a dump, say) is busy: the store waits on it. Longer than stallTimeout (1 s), shorter
      // than a connection's idle timeout (2 s), so only the stall clock could mistake it for a stall.
      await new Promise((r) => setTimeout(r, 1800));
      yield data.subarray(100_000);
    }
    const put = await store(events).put('slow/source.bin', Readable.from(slowSource(), { objectMode: false }));
    expect(put).toEqual({ bytes: data.length, retries: 0 });
    expect(events).toEqual([]);
  });

  it('a download whose reader pauses longer than stallTimeout is not stalled', async () => {
    const events: StoreEvent[] = [];
    const s = store(events);
    await s.put('slow/reader.bin', Readable.from([data]));
    const body = await s.get('slow/reader.bin');
    const chunks: Buffer[] = [];
    let paused = false;
    for await (const c of body) {
      chunks.push(c as Buffer);
      if (!paused) {
        paused = true;
        await new Promise((r) => setTimeout(r, 1800)); // the reader (decrypting to a slow disk) is busy
      }
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(events).toEqual([]);
  });

  it('a store that never answers fails a listing at stallTimeout, with the store and the stall in the error', async () => {
    const events: StoreEvent[] = [];
    proxy.setMode({ kind: 'blackhole' });
    const err = await (async () => {
      for await (const _ of store(events, proxy.endpoint).list('snapshots/')) void _;
    })().catch((e: unknown) => e as TykdrError);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('storeError');
    expect((err as TykdrError).message).toMatch(/^listing of snapshots\/ in s3:\/\/faults\/clock\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): no progress for 1s \(store\.stallTimeout is 1s\)$/);
    proxy.setMode({ kind: 'pass' });
  });
});

describe('backup through a faulty store', () => {
  it('a connection reset mid-upload is retried: the backup succeeds and the manifest counts the retry', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_TRANSFER, times: 1 });
    const res = await timed(['backup', '-c', await s3Config('reset-once.yaml'), '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.stats.resets).toBeGreaterThanOrEqual(1);
    const { manifest } = JSON.parse(res.stdout);
    expect(manifest.components.config.artifact.store_retries).toBe(1);
    // The text run shows the retry as it happens.
    proxy.setMode({ kind: 'reset', afterBytes: MID_TRANSFER, times: 1 });
    const text = await timed(['backup', '-c', await s3Config('reset-once.yaml')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toMatch(/store s3:\/\/faults\/tyk\/: upload of snapshots\/\S+\/config\.tar\.zst\.age failed \((ECONNRESET|EPIPE)\); retry 1 of 3 in [\d.]+s/);
    expect(text.stderr).toMatch(/config: done in .*\(1 store retry\)/);
  });

  it('a store that resets every connection mid-upload: exit 4 naming the store, no manifest, never 130', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_TRANSFER });
    const before = await objectKeys('tyk/');
    const res = await timed(['backup', '-c', await s3Config('reset-always.yaml')]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/Error: components\.config: upload of snapshots\/\S+ in s3:\/\/faults\/tyk\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): the connection to the store broke \((ECONNRESET|EPIPE)\) after 4 attempts/);
    expect(res.stderr).toMatch(/^Fix: /m);
    expect(res.stderr).toContain('retry 3 of 3');
    proxy.setMode({ kind: 'pass' });
    expect(await objectKeys('tyk/')).toEqual(before);
  });

  it('a store that resets every connection from the first byte: exit 4 at the store check, naming the bucket', async () => {
    proxy.setMode({ kind: 'reset' });
    const res = await timed(['backup', '-c', await s3Config('reset-first.yaml')]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/Error: bucket faults in s3:\/\/faults\/tyk\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): the connection to the store broke \(ECONNRESET\) after 4 attempts/);
  });

  it('a store that accepts and never answers: exit 4 once stallTimeout passes, naming the store and the stall', async () => {
    proxy.setMode({ kind: 'blackhole' });
    const res = await timed(['backup', '-c', await s3Config('blackhole.yaml')]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/Error: access check of bucket faults in s3:\/\/faults\/tyk\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): no progress for [34]s \(store\.stallTimeout is 3s\)/);
    expect(proxy.stats.blackholed).toBeGreaterThan(0);
  });

  it('a store that stops answering mid-upload: exit 4 naming the upload, the store and the stall; no object left', async () => {
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_TRANSFER });
    const before = await objectKeys('tyk/');
    const res = await timed(['backup', '-c', await s3Config('hang-mid.yaml')]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/Error: components\.config: upload of snapshots\/\S+\/config\.tar\.zst\.age in s3:\/\/faults\/tyk\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): no progress for [34]s \(store\.stallTimeout is 3s\)/);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/tyk\/: no progress for 1s on upload of .*waiting up to 3s/);
    proxy.setMode({ kind: 'pass' });
    expect(await objectKeys('tyk/')).toEqual(before);
  });

  it('a stall shorter than stallTimeout is waited out, reported, and the backup succeeds', async () => {
    proxy.setMode({ kind: 'stall', ms: 4000, afterBytes: MID_TRANSFER, times: 1 });
    const res = await timed(['backup', '-c', await s3Config('short-stall.yaml', { stall: '8s' })]);
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.stats.stalls).toBeGreaterThan(0);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/tyk\/: no progress for 2s on upload of snapshots\/\S+\/config\.tar\.zst\.age, waiting up to 8s \(store\.stallTimeout\)/);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/tyk\/: upload of \S+ moves again after [2-9]s without progress/);
    expect(res.stdout).toMatch(/Snapshot \S+ complete: 1 component\(s\)/);
  });
});

describe('signals while the store hangs', () => {
  /** Starts a backup whose upload hangs mid-way, and whose later requests (clean-up) get no answer at all. */
  async function hangingBackup(config: string, extraEnv: NodeJS.ProcessEnv, args: string[] = ['backup', '-c', config]) {
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_TRANSFER });
    const stallsBefore = proxy.stats.stalls;
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), ...args], {
      env: { ...process.env, ...env, ...extraEnv, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => void child.kill('SIGKILL'));
    await waitFor('the upload to hang', () => proxy.stats.stalls > stallsBefore);
    proxy.setMode({ kind: 'blackhole' });
    return { child, exited, out: () => ({ stdout, stderr }) };
  }

  async function exitWithin(exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, ms: number) {
    const t0 = Date.now();
    const r = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))]);
    expect(r, `still running ${ms} ms after the signal`).not.toBeNull();
    return { ...r!, ms: Date.now() - t0 };
  }

  it('SIGTERM during a hang: the work is aborted, the clean-up hangs, and the process exits 130 after TYKDR_GRACE', async () => {
    // stallTimeout 60s: only the signal and the grace can end this run.
    const h = await hangingBackup(await s3Config('sigterm.yaml', { stall: '60s' }), { TYKDR_GRACE: '2' });
    h.child.kill('SIGTERM');
    const r = await exitWithin(h.exited, GUARD_MS);
    expect(r.code, h.out().stderr).toBe(130);
    expect(h.out().stderr).toContain('SIGTERM received: stopping; no manifest will be written (exits within 2s; a second signal exits at once).');
    // The clean-up (removing the snapshot's objects) waited on the dead store: the grace ended it.
    expect(h.out().stderr).toContain('still running 2s after SIGTERM (TYKDR_GRACE): exiting now; clean-up may be incomplete.');
    proxy.setMode({ kind: 'pass' });
  });

  it('a second SIGINT exits at once', async () => {
    const h = await hangingBackup(await s3Config('sigint2.yaml', { stall: '60s' }), { TYKDR_GRACE: '60' });
    h.child.kill('SIGINT');
    await waitFor('the first signal to be seen', () => h.out().stderr.includes('SIGINT received'));
    h.child.kill('SIGINT');
    const r = await exitWithin(h.exited, GUARD_MS);
    expect(r.code, h.out().stderr).toBe(130);
    expect(h.out().stderr).toContain('SIGINT received again: exiting now.');
    proxy.setMode({ kind: 'pass' });
  });

  it('the daemon obeys too: SIGTERM while its backup hangs ends it within --grace + TYKDR_GRACE + the webhook flush', async () => {
    const config = await s3Config('daemon.yaml', { stall: '60s' });
    const h = await hangingBackup(config, { TYKDR_GRACE: '2' }, ['daemon', '-c', config, '--once', '--no-leader', '--job', 'backup', '--grace', '1']);
    h.child.kill('SIGTERM');
    const r = await exitWithin(h.exited, GUARD_MS);
    expect(r.code, h.out().stdout).toBe(130);
    const lines = h.out().stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.some((l) => l.msg === 'SIGTERM received: stopping')).toBe(true);
    // The backup was aborted after --grace; its clean-up then waited on the dead store, and the bound ended it.
    expect(lines.some((l) => l.msg === 'still running 13s after SIGTERM (--grace + TYKDR_GRACE + webhook flush): exiting now; clean-up may be incomplete')).toBe(true);
    proxy.setMode({ kind: 'pass' });
  });
});

describe('restore through a faulty store', () => {
  let snapshot: string;
  let plan: string;
  const original = () => readFile(path.join(root, 'blob.bin'));
  /** Where --to puts a restored file: the archived absolute path, under the --to folder. */
  const restored = (to: string) => readFile(path.join(to, root, 'blob.bin'));

  beforeAll(async () => {
    proxy.setMode({ kind: 'pass' });
    const res = await runCli(['backup', '-c', await s3Config('restore-src.yaml', { prefix: 'restore' }), '--json'], { env });
    expect(res.code, res.stderr).toBe(0);
    snapshot = JSON.parse(res.stdout).id;
    plan = path.join(ws.dir, 'files-plan.yaml');
    await writeFile(
      plan,
      `version: 1
name: files-only
description: The dashboard's files only.
steps:
  - id: dashboard
    component: dashboard
    action: restore
    verify: [files-restored]
    timeout: 5m
    on_error: stop
`,
    );
  });

  const restore = async (name: string, opts: { stall?: string } = {}) => {
    const to = path.join(ws.dir, `restored-${name}`);
    const res = await timed(['restore', '--plan', plan, '--snapshot', snapshot, '--to', to, '--yes', '-c', await s3Config(`${name}.yaml`, { prefix: 'restore', ...opts })]);
    return { res, to };
  };

  it('a connection reset mid-download is resumed: the restore succeeds with every byte, and the retry is reported', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_TRANSFER, times: 1 });
    const { res, to } = await restore('r-reset-once');
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.stats.resets).toBeGreaterThan(0);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/restore\/: .* failed \((ECONNRESET|EPIPE|timeout)[^)]*\); retry 1 of 3/);
    expect((await restored(to)).equals(await original())).toBe(true);
  });

  it('an artifact of several ranges, read on several connections, one reset mid-range: restored byte for byte, the retry reported', async () => {
    proxy.setMode({ kind: 'pass' });
    const tree = path.join(ws.dir, 'big-tree');
    await mkdir(tree);
    const big = randomBytes(12 * 1024 * 1024); // incompressible: three ranges of partSizeMiB 5
    await writeFile(path.join(tree, 'big.bin'), big);
    const backup = await timed(['backup', '-c', await s3Config('big-src.yaml', { prefix: 'big', tree, extraStore: ', partSizeMiB: 5' }), '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const id = JSON.parse(backup.stdout).id as string;
    const to = path.join(ws.dir, 'restored-big');
    proxy.setMode({ kind: 'reset', afterBytes: 2 * 1024 * 1024, times: 1 });
    const resets = proxy.stats.resets;
    const connections = proxy.stats.connections;
    const res = await timed(['restore', '--plan', plan, '--snapshot', id, '--to', to, '--yes', '-c', await s3Config('big.yaml', { prefix: 'big', tree, extraStore: ', partSizeMiB: 5' })]);
    proxy.setMode({ kind: 'pass' });
    expect(res.code, res.stderr).toBe(0);
    expect(proxy.stats.resets - resets).toBe(1);
    // The three ranges came on connections of their own, and the broken one on another.
    expect(proxy.stats.connections - connections).toBeGreaterThanOrEqual(4);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/big\/: download of snapshots\/\S+\/config\.tar\.zst\.age failed \((ECONNRESET|EPIPE|\w+) after \d+ bytes\); retry 1 of 3/);
    expect((await readFile(path.join(to, tree, 'big.bin'))).equals(big)).toBe(true);
  });

  it('a store that resets every connection mid-download: exit 4 naming the store', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_TRANSFER });
    const { res, to } = await restore('r-reset-always');
    expect(res.code, res.stderr).toBe(4);
    expect(res.stdout + res.stderr).toMatch(/s3:\/\/faults\/restore\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): the connection to the store broke \((ECONNRESET|EPIPE)\)/);
    expect(await readdir(to).catch(() => [])).toEqual([]);
  });

  it('a store that stops answering mid-download: exit 4 naming the download, the store and the stall', async () => {
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_TRANSFER });
    const { res, to } = await restore('r-hang');
    expect(res.code, res.stderr).toBe(4);
    expect(res.stdout + res.stderr).toMatch(/download of snapshots\/\S+\/config\.tar\.zst\.age in s3:\/\/faults\/restore\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): no progress for [34]s \(store\.stallTimeout is 3s\)/);
    expect(await readdir(to).catch(() => [])).toEqual([]);
  });

  it('a store that never answers: exit 4 naming the store', async () => {
    proxy.setMode({ kind: 'blackhole' });
    const { res } = await restore('r-blackhole');
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/s3:\/\/faults\/restore\/ \(endpoint http:\/\/127\.0\.0\.1:\d+\): no progress for [34]s \(store\.stallTimeout is 3s\)/);
  });

  it('a short stall mid-download is waited out and reported; the restore succeeds', async () => {
    proxy.setMode({ kind: 'stall', ms: 4000, afterBytes: MID_TRANSFER, times: 1 });
    const { res, to } = await restore('r-short-stall', { stall: '8s' });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/store s3:\/\/faults\/restore\/: no progress for 2s on .*, waiting up to 8s \(store\.stallTimeout\)/);
    expect((await restored(to)).equals(await original())).toBe(true);
  });

  it('SIGTERM while the download hangs and the store then answers nothing: exit 130 within TYKDR_GRACE, no staged plaintext, nothing extracted', async () => {
    const staging = path.join(ws.dir, 'staging-sigterm');
    const to = path.join(ws.dir, 'restored-sigterm');
    // stallTimeout 60s: only the signal and the grace can end this run.
    const config = await s3Config('r-sigterm.yaml', { prefix: 'restore', stall: '60s', staging });
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_TRANSFER });
    const stallsBefore = proxy.stats.stalls;
    const run = spawnCli(['restore', '--plan', plan, '--snapshot', snapshot, '--to', to, '--yes', '-c', config], '2');
    await waitFor('the download to hang', () => proxy.stats.stalls > stallsBefore);
    proxy.setMode({ kind: 'blackhole' });
    run.child.kill('SIGTERM');
    const end = await Promise.race([run.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
    proxy.setMode({ kind: 'pass' });
    expect(end, `still running ${GUARD_MS} ms after SIGTERM\n${run.output()}`).toEqual({ code: 130, signal: null });
    expect(run.output()).toContain('SIGTERM received: stopping');
    // The staged (decrypted) folder went with the abort, before the report upload waited on the dead store.
    expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'))).toEqual([]);
    expect(await readdir(to).catch(() => [])).toEqual([]);
  });

  describe('signals while an artifact of several ranges downloads on several connections', () => {
    let id: string;
    let big: Buffer;
    let tree: string;
    const rangedConfig = (name: string, staging: string) =>
      // stallTimeout 60s: only a signal ends a run whose range hangs. partSizeMiB 5: a 12 MiB object is three ranges.
      s3Config(name, { prefix: 'ranged-signals', tree, stall: '60s', staging, extraStore: ', partSizeMiB: 5, downloadConcurrency: 3' });

    beforeAll(async () => {
      proxy.setMode({ kind: 'pass' });
      tree = path.join(ws.dir, 'ranged-signals-tree');
      await mkdir(tree);
      big = randomBytes(12 * 1024 * 1024);
      await writeFile(path.join(tree, 'big.bin'), big);
      const backup = await timed(['backup', '-c', await rangedConfig('ranged-signals-src.yaml', path.join(ws.dir, 'unused-staging')), '--json']);
      expect(backup.code, backup.stderr).toBe(0);
      id = JSON.parse(backup.stdout).id as string;
    });

    /** A restore whose first connection to move 1 MiB of the object then hangs for good, the others served. */
    const hungRestore = async (name: string, staging: string, to: string) => {
      const config = await rangedConfig(`${name}.yaml`, staging);
      proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: 1024 * 1024, times: 1 });
      const stallsBefore = proxy.stats.stalls;
      let rangedGets = 0;
      proxy.watch((chunk, fromClient) => {
        if (fromClient && /^GET [^\r]*config\.tar\.zst\.age[^]*\r\nrange: bytes=/i.test(chunk.toString('latin1', 0, 2000))) rangedGets++;
      });
      cleanups.push(async () => proxy.watch(undefined));
      const run = spawnCli(['restore', '--plan', plan, '--snapshot', id, '--to', to, '--yes', '-c', config], '10');
      await waitFor('a range to hang', () => proxy.stats.stalls > stallsBefore);
      // The object's first range comes from the plain GET that found its size; the other two are asked for at once.
      await waitFor('the other ranges to be asked for', () => rangedGets >= 2);
      proxy.watch(undefined);
      return run;
    };

    // TYKDR_GRACE 10 s: the run ends by itself (clean-up, the report written), not by the grace's deadline.
    it('SIGTERM: exit 130, the staging folder removed, nothing extracted, the stage reported interrupted', async () => {
      const staging = path.join(ws.dir, 'staging-ranged-term');
      const to = path.join(ws.dir, 'restored-ranged-term');
      const run = await hungRestore('ranged-term', staging, to);
      run.child.kill('SIGTERM');
      const end = await Promise.race([run.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
      proxy.setMode({ kind: 'pass' });
      expect(end, `still running ${GUARD_MS} ms after SIGTERM\n${run.output()}`).toEqual({ code: 130, signal: null });
      expect(run.output()).toContain('SIGTERM received: stopping');
      expect(run.output()).not.toContain('still running');
      // Interrupted, whichever of the aborted streams reported first (not an internal "The operation was aborted").
      expect(run.output()).toMatch(/FAILED stage: interrupted by SIGTERM/);
      expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'))).toEqual([]);
      expect(await readdir(to).catch(() => [])).toEqual([]);
    });

    it('kill -9: the staging folder it leaves is removed by the next restore, which restores every byte', async () => {
      const staging = path.join(ws.dir, 'staging-ranged-kill');
      const to = path.join(ws.dir, 'restored-ranged-kill');
      const run = await hungRestore('ranged-kill', staging, to);
      const pid = run.child.pid!;
      run.child.kill('SIGKILL');
      expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
      proxy.setMode({ kind: 'pass' });
      const left = (await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'));
      expect(left).toHaveLength(1);
      expect(await readdir(to).catch(() => [])).toEqual([]);

      const again = await timed(['restore', '--plan', plan, '--snapshot', id, '--to', to, '--yes', '-c', await rangedConfig('ranged-kill-again.yaml', staging)]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout + again.stderr).toContain(`removed ${path.join(staging, left[0]!)}, left by a killed tykdr run (pid ${pid}`);
      expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'))).toEqual([]);
      expect((await readFile(path.join(to, tree, 'big.bin'))).equals(big)).toBe(true);
    });
  });

  it('verify through a store that stops answering: the object fails as a store error naming the store', async () => {
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_TRANSFER });
    const res = await timed(['verify', snapshot, '-c', await s3Config('v-hang.yaml', { prefix: 'restore' }), '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(4);
    const failed = JSON.parse(res.stdout).objects.filter((o: { status: string }) => o.status === 'failed');
    expect(failed[0].message).toMatch(/s3:\/\/faults\/restore\/ .*no progress for [34]s/);
    proxy.setMode({ kind: 'pass' });
  });
});

describe('what a killed upload leaves, prune sweeps', () => {
  it('S3: SIGTERM mid multipart upload aborts it (nothing left); SIGKILL leaves it, and prune removes it after the grace', async () => {
    const big = path.join(ws.dir, 'big');
    await mkdir(big);
    await writeFile(path.join(big, 'tyk_analytics.conf'), '{}');
    await writeFile(path.join(big, 'big.bin'), randomBytes(12 * 1024 * 1024));
    const config = await s3Config('multipart.yaml', { prefix: 'mpu', tree: big, extraStore: ', partSizeMiB: 5' });

    // Parts (5 MiB) hang after 3 MiB, each on its own connection (they are sent with Expect: 100-continue),
    // while small requests (CreateMultipartUpload, AbortMultipartUpload) go through: the upload is mid-way.
    const run = (kill: NodeJS.Signals) => {
      proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: 3 * 1024 * 1024 });
      const stallsBefore = proxy.stats.stalls;
      let watching = false;
      return runCli(['backup', '-c', config], {
        env,
        onStderr: (_chunk, killer) => {
          if (watching) return;
          watching = true;
          void waitFor('the multipart upload to hang', async () => proxy.stats.stalls > stallsBefore && (await multipartUploads('mpu/')).length > 0).then(
            () => killer(kill),
            () => killer('SIGKILL'),
          );
        },
      });
    };

    const term = await run('SIGTERM');
    expect(term.code, term.stderr).toBe(130);
    proxy.setMode({ kind: 'pass' });
    expect(await multipartUploads('mpu/')).toEqual([]);

    const killed = await run('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    proxy.setMode({ kind: 'pass' });
    const left = await multipartUploads('mpu/');
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^mpu\/snapshots\/\S+\/config\.tar\.zst\.age$/);
    await new Promise((r) => setTimeout(r, 1500)); // retention.incompleteGrace is 1s

    const dry = await timed(['prune', '-c', config, '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const u = JSON.parse(dry.stdout).unfinished_uploads;
    expect(u.uploads).toEqual([expect.objectContaining({ key: left[0]!.slice('mpu/'.length), stale: true, action: 'would-remove' })]);
    expect(await multipartUploads('mpu/')).toHaveLength(1);
    const confirm = await timed(['prune', '-c', config, '--confirm']);
    expect(confirm.code, confirm.stderr).toBe(0);
    expect(confirm.stdout).toMatch(/removed\s+unfinished upload of snapshots\/\S+\/config\.tar\.zst\.age/);
    expect(await multipartUploads('mpu/')).toEqual([]);
  });

  describe('local store', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
      cleanups.push(() => redis.stop());
      await seedTykRedis(redis.port, { sessions: 20_000 });
      // Redis's own test knob: the forked child sleeps this many microseconds per key while writing the RDB.
      await redis.cli('CONFIG', 'SET', 'rdb-key-save-delay', '500');
    });

    it('SIGKILL mid-upload leaves a .partial- file; prune lists it (dry run, --json) and removes it (--confirm)', async () => {
      const storeDir = path.join(ws.dir, 'local-kill');
      const config = await ws.writeConfig(
        'local-kill.yaml',
        `store: { kind: local, path: ${storeDir} }
encryption: { recipients: [${ws.recipient}] }
retention: { incompleteGrace: 1s }
components:
  redis: { kind: redis, port: ${redis.port} }
`,
      );
      // Killed once the object is being written (not a fixed time after the start: a loaded machine may be slower).
      let waiting: Promise<void> | undefined;
      const res = await runCli(['backup', '-c', config], {
        onStderr: (chunk, kill) => {
          if (waiting || !chunk.includes('redis (redis): started')) return;
          waiting = waitFor('the Redis object being written', () => writingObjectOf(storeDir, 'redis')).then(() => kill('SIGKILL'));
          waiting.catch(() => undefined); // awaited below
        },
      });
      await waiting;
      expect(res.signal).toBe('SIGKILL');
      const [id] = await readdir(path.join(storeDir, 'snapshots'));
      const partials = (await readdir(path.join(storeDir, 'snapshots', id!))).filter((n) => n.includes('.partial-'));
      expect(partials).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 1500));

      const dry = await timed(['prune', '-c', config, '--json']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(JSON.parse(dry.stdout).unfinished_uploads.uploads).toEqual([
        expect.objectContaining({ key: `snapshots/${id}/redis.rdb.zst.age`, id: partials[0], stale: true, action: 'would-remove' }),
      ]);
      const text = await timed(['prune', '-c', config]);
      expect(text.stdout).toContain(`would remove   unfinished upload of snapshots/${id}/redis.rdb.zst.age (${partials[0]})`);
      expect(await readdir(path.join(storeDir, 'snapshots', id!))).toEqual(partials);

      const confirm = await timed(['prune', '-c', config, '--confirm', '--json']);
      expect(confirm.code, confirm.stderr).toBe(0);
      expect(JSON.parse(confirm.stdout).unfinished_uploads.totals).toMatchObject({ stale: 1, removed: 1, failed: 0 });
      // The partial, and the folders it left empty, are gone.
      expect(await readdir(path.join(storeDir, 'snapshots')).catch(() => [])).toEqual([]);
    });
  });
});
