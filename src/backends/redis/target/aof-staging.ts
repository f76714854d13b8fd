import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { x as extractTar } from 'tar';
import { integrityError } from '../../../core/errors.js';
import { parseAofManifest, type AofManifest } from '../formats/aof-manifest.js';
import { AofScanner } from '../formats/aof-scanner.js';
import { RdbInspector } from '../formats/rdb-inspector.js';

/** A staged AOF snapshot, unpacked and checked. */
export interface StagedAof {
  /** The unpacked folder (e.g. <workDir>/aof/appendonlydir). */
  folder: string;
  /** Its name as backed up (the source's appenddirname). */
  dirName: string;
  /** The source's appendfilename: the manifest is `<appendfilename>.manifest`, and the target must use the same name. */
  appendfilename: string;
  manifest: AofManifest;
  /** RDB version of the base file when it has the RDB preamble; null for a command-only base. */
  baseRdbVersion: number | null;
  commands: number;
  bytes: number;
  /**
   * A Redis < 7 single-file AOF, archived as the base of a synthesized folder (the base named as the
   * appendfilename, no incremental file): what a Redis 6 server loads is that one file.
   */
  singleFile: boolean;
}

const FIX = 'the artifact is damaged or was not written by tykdr mode aof: restore from another snapshot';

/**
 * Unpacks an `aof` artifact (a tar of one AOF folder) into `dest` and checks it whole before anything is
 * restored: only regular files inside one folder, a manifest whose files are all present (and nothing
 * else), an RDB-preamble base that passes the RDB inspector (structure, CRC-64), and AOF parts made of
 * complete commands. Throws integrityError naming the problem.
 */
export async function unpackAof(tarFile: string, dest: string, signal?: AbortSignal): Promise<StagedAof> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true, mode: 0o700 });
  const problems: string[] = [];
  const tops = new Set<string>();
  try {
    await extractTar({
      file: tarFile,
      cwd: dest,
      strict: true,
      preservePaths: false,
      filter: (p, entry) => {
        const parts = p.replace(/\/+$/, '').split('/');
        const type = 'type' in entry ? entry.type : 'File';
        const ok = !p.startsWith('/') && !parts.includes('..') && !parts.includes('.') && ((parts.length === 2 && type === 'File') || (parts.length === 1 && type === 'Directory'));
        if (ok) tops.add(parts[0]!);
        else problems.push(`${p} (${type})`);
        return ok;
      },
    });
  } catch (err) {
    throw integrityError(`the AOF artifact is not a readable tar: ${(err as Error).message}`, FIX, err);
  }
  signal?.throwIfAborted();
  if (problems.length > 0) throw integrityError(`the AOF artifact holds unexpected entries: ${problems.slice(0, 5).join(', ')}`, FIX);
  if (tops.size !== 1) throw integrityError(`the AOF artifact holds ${tops.size} folders (${[...tops].join(', ') || 'none'}), not one AOF folder`, FIX);
  const dirName = [...tops][0]!;
  const folder = path.join(dest, dirName);
  const names = await readdir(folder);
  const manifests = names.filter((n) => n.endsWith('.manifest'));
  if (manifests.length !== 1) throw integrityError(`the AOF folder ${dirName} holds ${manifests.length} manifest files, not one`, FIX);
  const manifestName = manifests[0]!;
  const manifest = parseAofManifest(await readFile(path.join(folder, manifestName), 'latin1'), `${dirName}/${manifestName}`);
  const needed = [...(manifest.base ? [manifest.base.name] : []), ...manifest.incr.map((e) => e.name)];
  const missing = needed.filter((n) => !names.includes(n));
  if (missing.length > 0) throw integrityError(`${dirName}/${manifestName} lists ${missing.join(', ')}, missing from the artifact: it was cut short`, FIX);
  const extra = names.filter((n) => n !== manifestName && !needed.includes(n));
  if (extra.length > 0) throw integrityError(`the AOF folder holds files its manifest does not list: ${extra.join(', ')}`, FIX);

  let baseRdbVersion: number | null = null;
  let commands = 0;
  let bytes = 0;
  for (const name of needed) {
    const file = path.join(folder, name);
    let inspector: RdbInspector | null = null;
    let scanner: AofScanner | null = null;
    let first = true;
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) {
      signal?.throwIfAborted();
      const chunk = c as Buffer;
      if (first) {
        first = false;
        scanner = new AofScanner(`${dirName}/${name}`);
        // An RDB-preamble base; commands may follow it (a single-file AOF of Redis < 7).
        const tail = scanner;
        if (name === manifest.base?.name && chunk.subarray(0, 5).toString('latin1') === 'REDIS') inspector = new RdbInspector({ onTail: (t) => tail.feed(t) });
      }
      bytes += chunk.length;
      if (inspector) inspector.update(chunk);
      else scanner?.feed(chunk);
    }
    if (inspector) {
      try {
        baseRdbVersion = inspector.complete().rdbVersion;
      } catch (err) {
        throw integrityError(`${dirName}/${name}: ${(err as Error).message}`, FIX, err);
      }
    }
    if (scanner && !scanner.complete) {
      throw integrityError(`${dirName}/${name} ends inside a command (${scanner.bytes - scanner.safeEnd} bytes after the last complete one): it was cut short`, FIX);
    }
    commands += scanner?.commands ?? 0;
  }
  const appendfilename = manifestName.slice(0, -'.manifest'.length);
  const singleFile = manifest.incr.length === 0 && manifest.base?.name === appendfilename;
  return { folder, dirName, appendfilename, manifest, baseRdbVersion, commands, bytes, singleFile };
}
