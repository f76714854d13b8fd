import { constants } from 'node:fs';
import { access, open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { RedisComponent } from '../../../core/config/load.js';
import { integrityError, sourceUnreachable, TykdrError } from '../../../core/errors.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../../core/tyk/key-classes.js';
import { parseAofManifest, type AofManifest } from '../formats/aof-manifest.js';
import { AofScanner } from '../formats/aof-scanner.js';
import { parseInfo, parseKeyspace, type RedisAddress } from '../protocol/connection.js';
import { RdbInspector, type RdbFacts } from '../formats/rdb-inspector.js';

/*
 * The file side of mode aof: where the folder is, which files make the AOF now, opened and sized against
 * Redis's own counters, and their bytes validated as they are read.
 */

/** Where the AOF folder is, as Redis says and as this host reads it. */
export interface AofLayout {
  /** CONFIG GET dir: Redis's own view. */
  redisDir: string;
  /** The data dir as read here (aof.dataDir, default redisDir). */
  dataDir: string;
  dirName: string;
  appendfilename: string;
  /** dataDir/dirName */
  folder: string;
  manifestFile: string;
  databasesSetting: number | null;
  /**
   * Redis before 7.0: one AOF file, dataDir/appendfilename (an RDB preamble, then commands). The archive
   * then holds it as the base of a synthesized folder (dirName, with a one-line manifest), the layout
   * Redis 7 itself gives an upgraded single-file AOF, so every server of the multi-part era loads it too.
   */
  singleFile?: string;
}

export interface CapturedFile {
  name: string;
  kind: 'manifest' | 'base' | 'incr';
  /** Null for the manifest, whose bytes are held in `bytes`. */
  fh: FileHandle | null;
  bytes?: Buffer;
  /** Bytes taken into the archive. */
  size: number;
  /** Size when it was opened. */
  statSize: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  seq?: number;
  /** The live incremental file (its copy is cut at the last complete command). */
  last?: boolean;
  /** Commands in it, for the live file (counted when it was cut). */
  commands?: number;
}

export interface Capture {
  at: Date;
  manifest: AofManifest;
  files: CapturedFile[];
  sizeBefore: number;
  sizeAfter: number;
  cutTailBytes: number;
  /** INFO keyspace when the copy began. */
  keyspace: Map<number, { keys: number; expires: number }>;
}

/** What reading the files found, filled in as the archive streams. */
export interface AofCopyResult {
  base?: RdbFacts & { format: 'rdb' };
  baseAof?: { commands: number };
  incrCommands: number;
  /** Keys per class in the RDB-preamble base, per database. */
  baseClasses: Record<string, Record<KeyClass, number>>;
}

/** Asks Redis where its AOF folder is (CONFIG GET), unless aof.dataDir / aof.appendDirName say it. */
export async function locateAof(client: Redis, cfg: RedisComponent, addr: RedisAddress, singleFile = false): Promise<AofLayout> {
  const get = async (name: string) => ((await client.config('GET', name)) as string[])[1];
  const redisDir = (await get('dir')) ?? '';
  const dirName = singleFile ? 'appendonlydir' : (cfg.aof?.appendDirName ?? (await get('appenddirname')) ?? 'appendonlydir');
  const appendfilename = (await get('appendfilename')) ?? 'appendonly.aof';
  const databases = Number(await get('databases'));
  const dataDir = cfg.aof?.dataDir ?? redisDir;
  if (!dataDir) throw sourceUnreachable(`Redis at ${addr.host}:${addr.port} did not say where its data is (CONFIG GET dir)`, `set components.${cfg.name}.aof.dataDir`);
  const folder = path.join(dataDir, dirName);
  return {
    redisDir,
    dataDir,
    dirName,
    appendfilename,
    folder,
    manifestFile: path.join(folder, `${appendfilename}.manifest`),
    databasesSetting: Number.isFinite(databases) ? databases : null,
    ...(singleFile ? { folder: dataDir, singleFile: path.join(dataDir, appendfilename) } : {}),
  };
}


/** The manifest's bytes and its parsed entries; unreadable folders are refused with the fix. */
export async function readAofManifest(layout: AofLayout, component: string): Promise<{ text: Buffer; manifest: AofManifest }> {
  let text: Buffer;
  if (layout.singleFile) {
    try {
      await access(layout.singleFile, constants.R_OK);
    } catch (err) {
      throw unreadable(err, layout, layout.singleFile, component);
    }
    if (!/^[\w.-]+$/.test(layout.appendfilename)) {
      throw sourceUnreachable(`Redis's appendfilename ${JSON.stringify(layout.appendfilename)} has characters tykdr does not put in an AOF manifest`, 'use an appendfilename of letters, digits, ".", "_" and "-", or mode: rdb');
    }
    text = Buffer.from(`file ${layout.appendfilename} seq 1 type b\n`, 'latin1');
    return { text, manifest: parseAofManifest(text.toString('latin1'), layout.singleFile) };
  }
  try {
    await access(layout.folder, constants.R_OK | constants.X_OK);
    text = await readFile(layout.manifestFile);
  } catch (err) {
    throw unreadable(err, layout, layout.manifestFile, component);
  }
  return { text, manifest: parseAofManifest(text.toString('latin1'), layout.manifestFile) };
}


function unreadable(err: unknown, layout: AofLayout, file: string, component: string): Error {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  const f = `components.${component}.aof.dataDir`;
  const hint = layout.dataDir !== layout.redisDir ? ` (Redis itself says its dir is ${layout.redisDir})` : '';
  return sourceUnreachable(
    `cannot read the AOF folder: ${file}: ${code}${hint}. Mode aof copies Redis's files, so tykdr must run where Redis's data directory is readable`,
    `run tykdr on the Redis host as a user that may read ${layout.folder} (e.g. in the redis group), set ${f} where the folder is mounted on this host, or use mode: rdb`,
    err,
  );
}


/**
 * Reads the manifest and opens every file it needs, then checks against Redis's aof_current_size that
 * these files are the ones it writes. A rewrite finishing in between (an explicit BGREWRITEAOF) is retried.
 */
export async function captureAof(client: Redis, layout: AofLayout, where: string, component: string): Promise<Capture> {
  for (let attempt = 1; ; attempt++) {
    const before = parseInfo(String(await client.info()));
    const { text, manifest } = await readAofManifest(layout, component);
    const at = new Date();
    const files: CapturedFile[] = [];
    const closeAll = () => Promise.all(files.map((f) => f.fh?.close().catch(() => undefined)));
    try {
      const mst = await open(layout.singleFile ?? layout.manifestFile, 'r').then(async (fh) => {
        try {
          return await fh.stat();
        } finally {
          await fh.close();
        }
      });
      files.push({ name: `${layout.appendfilename}.manifest`, kind: 'manifest', fh: null, bytes: text, size: text.length, statSize: text.length, mode: mst.mode, uid: mst.uid, gid: mst.gid, mtime: mst.mtime });
      const parts = [...(manifest.base ? [{ e: manifest.base, kind: 'base' as const }] : []), ...manifest.incr.map((e) => ({ e, kind: 'incr' as const }))];
      for (const { e, kind } of parts) {
        const file = path.join(layout.folder, e.name);
        let fh: FileHandle;
        try {
          fh = await open(file, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            throw integrityError(`${layout.manifestFile} lists ${e.name}, which is not in ${layout.folder}`, 'check the Redis log; run redis-check-aof on the folder');
          }
          throw unreadable(err, layout, file, component);
        }
        const st = await fh.stat();
        files.push({ name: e.name, kind, fh, size: st.size, statSize: st.size, mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtime, seq: e.seq });
      }
    } catch (err) {
      await closeAll();
      // A rewrite that finished between reading the manifest and opening its files deleted them: try again.
      if (attempt < 3 && err instanceof TykdrError && err.kind === 'integrityError' && /lists/.test(err.message)) continue;
      throw err;
    }
    const after = parseInfo(String(await client.info('persistence')));
    if (after.aof_rewrites !== before.aof_rewrites && attempt < 3) {
      await closeAll();
      continue;
    }
    const a0 = Number(before.aof_current_size);
    const a1 = Number(after.aof_current_size);
    const sizeAll = files.filter((f) => f.kind !== 'manifest').reduce((s, f) => s + f.statSize, 0);
    const sizeIncr = files.filter((f) => f.kind === 'incr').reduce((s, f) => s + f.statSize, 0);
    // aof_current_size counts the base and incremental files (only the incremental ones when Redis created
    // the base at its first start); the files opened between the two INFO calls must hold that much.
    const fits = (s: number) => a0 <= s && s <= a1;
    if (after.aof_rewrites === before.aof_rewrites && Number.isFinite(a0) && Number.isFinite(a1) && !fits(sizeAll) && !fits(sizeIncr)) {
      await closeAll();
      throw sourceUnreachable(
        `the AOF files in ${layout.folder} are not the ones Redis at ${where} writes: they hold ${sizeAll} bytes, Redis reports aof_current_size ${a0 === a1 ? a0 : `${a0}..${a1}`}` +
          (layout.dataDir !== layout.redisDir ? ` (Redis's own dir is ${layout.redisDir})` : ''),
        `set components.${component}.aof.dataDir to the folder that Redis writes (CONFIG GET dir), as this host sees it`,
      );
    }
    const cutTailBytes = layout.singleFile ? await cutSingleFile(files) : await cutLastIncr(files);
    return { at, manifest, files, sizeBefore: a0, sizeAfter: a1, cutTailBytes, keyspace: parseKeyspace(before) };
  }
}


/** A single-file AOF (Redis < 7) is live as a whole: its commands after the RDB preamble are cut at the last safe point. */
async function cutSingleFile(files: CapturedFile[]): Promise<number> {
  const f = files.find((x) => x.kind === 'base');
  if (!f || f.statSize === 0) return 0;
  f.last = true;
  const scanner = new AofScanner(f.name);
  let inspector: RdbInspector | null = null;
  let first = true;
  for await (const c of f.fh!.createReadStream({ start: 0, end: f.statSize - 1, autoClose: false, highWaterMark: 1 << 20 })) {
    const chunk = c as Buffer;
    if (first) {
      first = false;
      if (chunk.subarray(0, 5).toString('latin1') === 'REDIS') inspector = new RdbInspector({ onTail: (t) => scanner.feed(t) });
    }
    if (inspector) inspector.update(chunk);
    else scanner.feed(chunk);
  }
  const preamble = inspector ? f.statSize - inspector.tailBytes : 0;
  f.size = preamble + scanner.safeEnd;
  f.commands = scanner.commands;
  return f.statSize - f.size;
}

/** The live incremental file may end inside a command (or an open MULTI): copy it up to its last safe point. */
async function cutLastIncr(files: CapturedFile[]): Promise<number> {
  const incr = files.filter((f) => f.kind === 'incr');
  const last = incr[incr.length - 1];
  if (!last || last.statSize === 0) return 0;
  last.last = true;
  const scanner = new AofScanner(last.name);
  for await (const chunk of last.fh!.createReadStream({ start: 0, end: last.statSize - 1, autoClose: false, highWaterMark: 1 << 20 })) {
    scanner.feed(chunk as Buffer);
  }
  last.size = scanner.safeEnd;
  last.commands = scanner.commands;
  return last.statSize - scanner.safeEnd;
}


/** A file's bytes for the archive, validated on the way: RDB base through the RDB inspector, AOF parts through the scanner. */
export async function* aofFileContent(
  f: CapturedFile,
  layout: AofLayout,
  result: AofCopyResult,
): AsyncGenerator<Buffer> {
  if (f.kind === 'manifest') {
    yield f.bytes!;
    return;
  }
  const name = path.join(layout.folder, f.name);
  let inspector: RdbInspector | null = null;
  let scanner: AofScanner | null = null;
  let first = true;
  if (f.size > 0) {
    for await (const c of f.fh!.createReadStream({ start: 0, end: f.size - 1, autoClose: false, highWaterMark: 1 << 20 })) {
      const chunk = c as Buffer;
      if (first) {
        first = false;
        // A base file is an RDB when it starts with the RDB magic (aof-use-rdb-preamble yes), else commands.
        if (f.kind === 'base' && chunk.subarray(0, 5).toString('latin1') === 'REDIS') {
          // Commands after the preamble: a single-file AOF (Redis < 7), cut at a safe point already.
          const tail = new AofScanner(name);
          scanner = tail;
          inspector = new RdbInspector({
            onKey: (db, key) => {
              (result.baseClasses[db] ??= emptyClassCounts())[classifyKey(key)]++;
            },
            onTail: (t) => tail.feed(t),
          });
        } else if (!f.last) {
          scanner = new AofScanner(name);
        }
      }
      if (inspector) inspector.update(chunk);
      else scanner?.feed(chunk);
      yield chunk;
    }
  }
  if (inspector) result.base = { ...inspector.complete(), format: 'rdb' };
  if (scanner && !scanner.complete) {
    throw integrityError(`${name} ends inside a command (${scanner.bytes - scanner.safeEnd} bytes after the last complete one), but it is not the live file`, 'run redis-check-aof on the folder');
  }
  if (f.kind === 'base' && !inspector) result.baseAof = { commands: scanner?.commands ?? f.commands ?? 0 };
  if (f.kind === 'base' && inspector) result.incrCommands += scanner?.commands ?? 0;
  if (f.kind === 'incr') result.incrCommands += scanner?.commands ?? f.commands ?? 0;
}

