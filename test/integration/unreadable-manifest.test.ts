import { randomBytes } from 'node:crypto';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useCleanups } from '../helpers/cleanups.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { startMinioBehindProxy, type Minio } from '../helpers/minio.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * A snapshot whose manifest is in the store but which the store fails to give (every GET of it reset, through the
 * fault proxy in front of a real MinIO) is not an incomplete snapshot: nothing says it is. `verify --all` counts it as
 * failed (exit 4) instead of skipping it, and `copy all` copies the others and then fails naming it, instead of
 * calling the off-site copy done without it. A malformed manifest is a damaged snapshot: verify --all fails (exit 5).
 */
const { cleanups } = useCleanups();
const BUCKET = 'unread';

let minio: Minio;
let proxy: FaultProxy;
let ws: Workspace;
let config: string;
let offsite: string;
const ids: string[] = [];
const env = () => ({ S3_SECRET: minio.secretAccessKey });

beforeAll(async () => {
  let servers: { minio: Minio; proxy: FaultProxy };
  [servers, ws] = await Promise.all([startMinioBehindProxy(BUCKET, cleanups), makeWorkspace()]);
  ({ minio, proxy } = servers);
  cleanups.push(() => ws.cleanup());
  const tree = path.join(ws.dir, 'tree');
  await mkdir(tree);
  await writeFile(path.join(tree, 'blob.bin'), randomBytes(50_000));
  offsite = path.join(ws.dir, 'offsite');
  config = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: s3, bucket: ${BUCKET}, prefix: "u", endpoint: "${proxy.endpoint}", forcePathStyle: true, ` +
      `accessKeyId: ${minio.accessKeyId}, secretAccessKey: "\${S3_SECRET}", stallTimeout: 3s, connectTimeout: 2s, maxAttempts: 2 }
copies:
  offsite: { kind: local, path: ${offsite} }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  config: { kind: files, roots: [${tree}], role: dashboard }
`,
  );
  for (let i = 0; i < 3; i++) {
    const res = await runCli(['backup', '-c', config, '--json'], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    ids.push(JSON.parse(res.stdout).id as string);
  }
  // Every GET of the middle snapshot's manifest is reset; its HEAD, and everything else, go through.
  proxy.resetWhen((chunk, fromClient) => fromClient && chunk.toString('latin1', 0, 200).startsWith(`GET /${BUCKET}/u/snapshots/${ids[1]}/manifest.json`));
});

describe('a manifest the store fails to give', () => {
  it('verify all: that snapshot FAILED (exit 4, a store failure), the others verified', async () => {
    const res = await runCli(['verify', '--all', '-c', config], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(4);
    expect(res.stdout).toMatch(new RegExp(`^FAILED  ${ids[1]}  \\(manifest\\): the store failed to give it \\(.+\\); nothing of the snapshot was checked$`, 'm'));
    expect(res.stdout).not.toMatch(new RegExp(`skipped ${ids[1]}`));
    for (const id of [ids[0], ids[2]]) expect(res.stdout).toMatch(new RegExp(`^ok\\s+${id}\\s+config\\.tar\\.zst\\.age`, 'm'));
    expect(res.stdout).toMatch(/^2 object\(s\) in 2 snapshot\(s\) checked and intact in s3:\/\/unread\/u\/; 1 snapshot\(s\) FAILED: the store failed to give their manifest\.$/m);
    expect(res.stdout + res.stderr).not.toContain(minio.secretAccessKey);
    expect(res.stderr).not.toMatch(/Warning/);

    const json = await runCli(['verify', '--all', '-c', config, '--json'], { env: env() });
    expect(json.code).toBe(4);
    const out = JSON.parse(json.stdout);
    expect(out.ok).toBe(false);
    expect(out.unreadable).toEqual([{ id: ids[1], reason: expect.any(String) }]);
    expect(out.skipped).toEqual([]);
  });

  it('copy all: the others are copied, then exit 4 naming it; once the store answers, a second run copies it', async () => {
    const res = await runCli(['copy', 'all', '--to', 'offsite', '-c', config], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(4);
    expect(res.stderr).toMatch(new RegExp(`snapshot ${ids[1]} in s3://${BUCKET}/u/ could not be copied: the store failed to give its manifest`));
    expect(res.stderr).toMatch(/tykdr copy all --to offsite` again/);
    const manifestAt = (id: string) => access(path.join(offsite, 'snapshots', id, 'manifest.json')).then(() => true, () => false);
    expect(await manifestAt(ids[0]!)).toBe(true);
    expect(await manifestAt(ids[2]!)).toBe(true);
    expect(await manifestAt(ids[1]!)).toBe(false);

    // --json: what was copied is there, and why it failed.
    const json = await runCli(['copy', 'all', '--to', 'offsite', '--json', '-c', config], { env: env() });
    expect(json.code, json.stderr).toBe(4);
    const out = JSON.parse(json.stdout);
    expect(out).toMatchObject({ ok: false, error: { kind: 'storeError', exit_code: 4 }, unreadable: [{ id: ids[1], reason: expect.any(String) }] });
    expect(out.snapshots.map((x: { id: string; manifest: string }) => [x.id, x.manifest])).toEqual([
      [ids[0], 'present'],
      [ids[2], 'present'],
    ]);

    proxy.resetWhen(undefined);
    const again = await runCli(['copy', 'all', '--to', 'offsite', '-c', config], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(await manifestAt(ids[1]!)).toBe(true);

    // Held complete at the destination, a manifest the source cannot give no longer fails the copy.
    proxy.resetWhen((chunk, fromClient) => fromClient && chunk.toString('latin1', 0, 200).startsWith(`GET /${BUCKET}/u/snapshots/${ids[1]}/manifest.json`));
    const held = await runCli(['copy', 'all', '--to', 'offsite', '-c', config], { env: env() });
    proxy.resetWhen(undefined);
    expect(held.code, held.stderr).toBe(0);
  });

  it('verify --all: a damaged (malformed) manifest FAILED as an integrity failure (exit 5), not skipped', async () => {
    const id = '20200101T000000Z-0000aa';
    const newer = '20200102T000000Z-0000bb';
    await minio.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${id}/manifest.json`, Body: '{"format": 1}' }));
    // A manifest of a newer format is not damaged: skipped, saying why.
    await minio.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${newer}/manifest.json`, Body: '{"format": "tykdr-snapshot/2"}' }));
    const res = await runCli(['verify', '--all', '-c', config], { env: env() });
    await minio.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${newer}/manifest.json` }));
    expect(res.stdout).toMatch(new RegExp(`^skipped ${newer}: manifest of snapshot ${newer} is in format tykdr-snapshot/2; this tykdr reads tykdr-snapshot/1$`, 'm'));
    // copy all says it did not copy it (and why), and fails nothing else.
    const copy = await runCli(['copy', 'all', '--to', 'offsite', '--json', '-c', config], { env: env() });
    await minio.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${id}/manifest.json` }));
    expect(copy.code, copy.stderr).toBe(0);
    expect(JSON.parse(copy.stdout).damaged).toEqual([{ id, reason: expect.stringMatching(/malformed/) }]);
    expect(res.code, res.stdout + res.stderr).toBe(5);
    expect(res.stdout).toMatch(new RegExp(`^FAILED  ${id}  \\(manifest\\): .+$`, 'm'));
    expect(res.stdout).toMatch(/1 snapshot\(s\) FAILED: their manifest is damaged\.$/m);
    expect(res.stdout).not.toMatch(new RegExp(`skipped ${id}`));
  });

  it('snapshots: each state named (complete, UNREADABLE, DAMAGED, NEWER FORMAT, INCOMPLETE), the reasons under the table and in --json', async () => {
    const damaged = '20200103T000000Z-0000cc';
    const newer = '20200104T000000Z-0000dd';
    const unfinished = '20200105T000000Z-0000ee';
    const put = (id: string, name: string, body: string) => minio.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${id}/${name}`, Body: body }));
    await put(damaged, 'manifest.json', '{"format": 1}');
    await put(newer, 'manifest.json', '{"format": "tykdr-snapshot/2"}');
    await put(unfinished, 'config.tar.zst.age', 'half an object');
    proxy.resetWhen((chunk, fromClient) => fromClient && chunk.toString('latin1', 0, 200).startsWith(`GET /${BUCKET}/u/snapshots/${ids[1]}/manifest.json`));
    const text = await runCli(['snapshots', '-c', config], { env: env() });
    const json = await runCli(['snapshots', '--json', '-c', config], { env: env() });
    proxy.resetWhen(undefined);
    // prune (a dry run) removes the unfinished one past the grace, and keeps the damaged and the newer-format ones:
    // listed even without --verbose (they need a person).
    const prune = await runCli(['prune', '-c', config], { env: env() });
    for (const id of [damaged, newer, unfinished]) {
      for (const name of ['manifest.json', 'config.tar.zst.age']) await minio.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `u/snapshots/${id}/${name}` }));
    }
    expect(text.code, text.stderr).toBe(0);
    const status = (id: string) => new RegExp(`^${id}  .*?  (complete|UNREADABLE|DAMAGED|NEWER FORMAT|INCOMPLETE)  `, 'm').exec(text.stdout)?.[1];
    expect([ids[0], ids[1], ids[2], damaged, newer, unfinished].map((id) => status(id!))).toEqual(['complete', 'UNREADABLE', 'complete', 'DAMAGED', 'NEWER FORMAT', 'INCOMPLETE']);
    expect(text.stdout).toMatch(new RegExp(`^${damaged}: manifest of snapshot ${damaged} is malformed at `, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^${newer}: manifest of snapshot ${newer} is in format tykdr-snapshot/2; this tykdr reads tykdr-snapshot/1$`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^${ids[1]}: .+$`, 'm'));
    expect(text.stdout).not.toMatch(new RegExp(`^${unfinished}: `, 'm'));
    expect(json.code, json.stderr).toBe(0);
    const rows = new Map((JSON.parse(json.stdout).snapshots as Array<{ id: string }>).map((r) => [r.id, r]));
    expect(rows.get(damaged)).toMatchObject({ complete: false, damaged: true, problem: expect.stringMatching(/malformed/) });
    expect(rows.get(damaged)).not.toHaveProperty('unreadable');
    expect(rows.get(newer)).toMatchObject({ complete: false, newer_format: true, problem: expect.stringMatching(/tykdr-snapshot\/2/) });
    expect(rows.get(newer)).not.toHaveProperty('damaged');
    expect(rows.get(ids[1]!)).toMatchObject({ complete: false, unreadable: true });
    expect(rows.get(unfinished)).toMatchObject({ complete: false, problem: 'no manifest: the backup did not finish' });
    expect(rows.get(unfinished)).not.toHaveProperty('damaged');
    expect(rows.get(ids[0]!)).toMatchObject({ complete: true });
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toMatch(new RegExp(`^would remove\\s+${unfinished}\\s.*incomplete, older than`, 'm'));
    expect(prune.stdout).toMatch(new RegExp(`^keep\\s+${damaged}  DAMAGED .*its manifest is damaged: kept as evidence .*delete snapshots/${damaged}/ from the store by hand, manifest\\.json first`, 'm'));
    expect(prune.stdout).not.toMatch(new RegExp(`^keep\\s+${ids[0]}`, 'm'));
    expect(prune.stdout).toMatch(new RegExp(`^keep\\s+${newer}  NEWER FORMAT .*its manifest is in a newer format: prune it with the tykdr that wrote it`, 'm'));
    expect(prune.stdout).toMatch(new RegExp(`^would remove\\s+${unfinished}  INCOMPLETE `, 'm'));
  });
});
