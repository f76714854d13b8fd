import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TykdrError } from '../../src/core/errors.js';
import { compressedStaged, inflateStaged, stageArtifact } from '../../src/core/restore/staging.js';
import { openStore } from '../../src/backends/stores/registry.js';
import { readManifest } from '../../src/core/catalog.js';
import { generateIdentity, parseIdentity, parseIdentityFile } from '../../src/core/age/keys.js';
import { runCli } from '../helpers/cli.js';
import { fingerprintTree, makeWorkspace, type Workspace } from '../helpers/workspace.js';

const exec = promisify(execFile);

/**
 * A local store on a full file system: a small tmpfs (the suite runs as root, as scripts/tools.sh needs).
 * Out of blocks, the write fails; out of inodes, creating the snapshot's folder fails (Node's recursive
 * mkdir reported that as ENOENT, a "bug" exit 1). Both are store errors (exit 4) naming the store, and
 * leave no partial object behind.
 */

let ws: Workspace;
let tree: string;
const mounts: string[] = [];

async function tmpfs(options: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-full-'));
  await exec('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(async () => {
  ws = await makeWorkspace();
  tree = await mkdtemp(path.join(tmpdir(), 'tykdr-full-tree-'));
  await mkdir(path.join(tree, 'apps'));
  // Incompressible: 256 KiB of it cannot fit in a 64 KiB file system.
  const { randomBytes } = await import('node:crypto');
  await writeFile(path.join(tree, 'apps', 'big.bin'), randomBytes(256 * 1024));
  await writeFile(path.join(tree, 'tyk.conf'), '{}');
});

afterAll(async () => {
  for (const m of mounts) {
    await exec('umount', [m]).catch(() => undefined);
    await rm(m, { recursive: true, force: true });
  }
  await Promise.all([ws?.cleanup(), tree && rm(tree, { recursive: true, force: true })]);
});

const config = (store: string) => `store: { kind: local, path: ${store} }
encryption: { recipients: [${ws.recipient}] }
components:
  config: { kind: files, roots: [${tree}] }
`;

describe('a local store on a full file system', () => {
  it('out of space: exit 4, naming the store, no partial object left', async () => {
    const store = path.join(await tmpfs('size=64k'), 'store');
    const f = await ws.writeConfig('full.yaml', config(store));
    const res = await runCli(['backup', '-c', f]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toContain(`no space left on the file system of the store ${store}`);
    expect(res.stderr).toContain(`Fix: free space where ${store} lives`);
    expect(res.stderr).not.toContain('This is a bug');
    expect(Object.keys(await fingerprintTree(store))).toEqual([]);
  });

  it('out of inodes: exit 4 with ENOSPC (not ENOENT), naming the store', async () => {
    const mount = await tmpfs('size=1m,nr_inodes=3');
    const store = path.join(mount, 'store');
    const f = await ws.writeConfig('inodes.yaml', config(store));
    const res = await runCli(['backup', '-c', f]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toContain(`no space left on the file system of the store ${store}: ENOSPC`);
    expect(res.stderr).not.toContain('ENOENT');
    expect(res.stderr).not.toContain('This is a bug');
    const snapshots = await readdir(path.join(store, 'snapshots')).catch(() => []);
    for (const id of snapshots) expect(await readdir(path.join(store, 'snapshots', id))).toEqual([]);
  });
});

describe('a restore that decompresses a staged artifact into a full file system', () => {
  it('says the folder is full (bad input, naming restore.stagingDir), not that the snapshot is damaged; leaves no stream open', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-inflate-'));
    try {
      // 1 MiB of zeros, compressed to a few bytes: it cannot be written out into a 64 KiB file system.
      const plain = path.join(dir, 'plain');
      await writeFile(plain, Buffer.alloc(1 << 20));
      await exec('zstd', ['-q', '-f', plain, '-o', `${plain}.zst`]);
      const staged = compressedStaged(`${plain}.zst`, 'zstd', { stored_bytes: 100, plaintext_bytes: 1 << 20 });
      const dest = path.join(await tmpfs('size=64k'), 'work', 'archive.pgdump');
      const err = await inflateStaged(staged, dest, 'components.pg').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(TykdrError);
      expect((err as TykdrError).kind).toBe('badInput');
      expect((err as TykdrError).message).toBe(`components.pg: writing the decompressed artifact to ${dest} failed (ENOSPC)`);
      expect((err as TykdrError).fix).toContain('restore.stagingDir');
      // The part written is gone (plaintext is not left behind).
      expect(await stat(dest).then(() => 'there', () => 'gone')).toBe('gone');
      // With room, the same staged file inflates whole.
      const roomy = path.join(dir, 'out', 'archive.pgdump');
      await inflateStaged(staged, roomy, 'components.pg');
      expect((await readFile(roomy)).equals(Buffer.alloc(1 << 20))).toBe(true);
      // A staged file that cannot be read is named as such, not as the write.
      const unreadable = compressedStaged(dir, 'zstd', { stored_bytes: 100, plaintext_bytes: 1 << 20 });
      const readErr = await inflateStaged(unreadable, path.join(dir, 'out', 'again.pgdump'), 'components.pg').then(() => null, (e: unknown) => e);
      expect((readErr as TykdrError).kind).toBe('badInput');
      expect((readErr as TykdrError).message).toBe(`components.pg: reading the staged artifact ${dir} failed (EISDIR)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a stage whose staging folder fills up while it writes', () => {
  it('bad input naming the file and restore.stagingDir, the partial file removed, no descriptor left open', async () => {
    const store = path.join(await mkdtemp(path.join(tmpdir(), 'tykdr-full-store-')), 'store');
    const f = await ws.writeConfig('staging-full.yaml', config(store));
    const b = await runCli(['backup', '-c', f, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).id as string;
    const local = openStore({ kind: 'local', path: store } as never);
    const manifest = await readManifest(local, id);
    const keys = { identities: parseIdentityFile(await readFile(ws.identityFile, 'utf8'), ws.identityFile) };
    // The preflight's free-space check passed long ago (or another writer filled the folder since): 64 KiB for a
    // 256 KiB incompressible tar.
    const dir = path.join(await tmpfs('size=64k'), 'staging');
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const err = await stageArtifact({ store: local, manifest, component: 'config', dir, keys }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('badInput');
    expect((err as TykdrError).message).toBe(`staging config: writing ${path.join(dir, 'config.tar')} failed (ENOSPC)`);
    expect((err as TykdrError).fix).toContain('restore.stagingDir');
    expect(await readdir(dir)).toEqual([]);
    expect(fds()).toBe(before);
    // With room, the same object stages whole.
    const roomy = await mkdtemp(path.join(tmpdir(), 'tykdr-stage-'));
    try {
      const staged = await stageArtifact({ store: local, manifest, component: 'config', dir: roomy, keys });
      expect(staged.plaintextBytes).toBe(manifest.components.config!.artifact.plaintext_bytes);
      expect((await stat(staged.file)).size).toBe(staged.plaintextBytes);
      // A failure of another stream of the stage (here decryption: a wrong identity, with the manifest's recipient list
      // emptied so that it is found only in the stream) is not called a write failure, and leaves nothing behind.
      const other = { identities: [parseIdentity(generateIdentity().identity)] };
      const blind = { ...manifest, encryption: { ...manifest.encryption, recipients: [] } } as typeof manifest;
      const dir2 = path.join(roomy, 'again');
      const bad = await stageArtifact({ store: local, manifest: blind, component: 'config', dir: dir2, keys: other }).then(() => null, (e: unknown) => e);
      expect(bad).toBeInstanceOf(TykdrError);
      expect((bad as TykdrError).message).not.toContain('writing');
      expect((bad as TykdrError).fix ?? '').not.toContain('restore.stagingDir');
      expect(await readdir(dir2)).toEqual([]);
    } finally {
      await rm(roomy, { recursive: true, force: true });
      await rm(path.dirname(store), { recursive: true, force: true });
    }
  });
});
