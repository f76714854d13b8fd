import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from './cli.js';

/** A temp folder holding a tykdr.yaml, an identity, and a local store. */
export interface Workspace {
  dir: string;
  identityFile: string;
  recipient: string;
  storeDir: string;
  writeConfig(name: string, yaml: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function makeWorkspace(): Promise<Workspace> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-ws-'));
  const identityFile = path.join(dir, 'identity.txt');
  const gen = await runCli(['key', 'generate', '--output', identityFile, '--json']);
  if (gen.code !== 0) throw new Error(`key generate failed: ${gen.stderr}`);
  const recipient = (JSON.parse(gen.stdout) as { recipient: string }).recipient;
  return {
    dir,
    identityFile,
    recipient,
    storeDir: path.join(dir, 'store'),
    writeConfig: async (name, yaml) => {
      const file = path.join(dir, name);
      await writeFile(file, yaml);
      return file;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Every file under a folder with its SHA-256: to prove a failed run left earlier snapshots untouched. */
export async function fingerprintTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = path.join(d, n);
      if ((await stat(p)).isDirectory()) await walk(p);
      else out[path.relative(root, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
    }
  };
  await walk(root);
  return out;
}

/**
 * Objects a local store is writing right now: its ".partial-" files (see LocalStore.put), with their paths
 * relative to the store and their sizes so far. A file that goes away while the tree is read is left out.
 */
export async function partialObjects(storeDir: string): Promise<Array<{ path: string; bytes: number }>> {
  const out: Array<{ path: string; bytes: number }> = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.includes('.partial-')) {
        const st = await stat(p).catch(() => null);
        if (st) out.push({ path: path.relative(storeDir, p), bytes: st.size });
      }
    }
  };
  await walk(storeDir);
  return out;
}

/** True while the local store is writing the object of `component` (e.g. "snapshots/<id>/redis.rdb.zst.age.partial-…"). */
export async function writingObjectOf(storeDir: string, component: string): Promise<boolean> {
  return (await partialObjects(storeDir)).some((o) => path.basename(o.path).startsWith(`${component}.`));
}
