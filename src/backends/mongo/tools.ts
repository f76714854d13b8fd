import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { MongoComponent } from '../../core/config/load.js';
import { badInput } from '../../core/errors.js';
import { watchChild } from '../../core/util/watchdog.js';

export type MongoTool = 'mongodump' | 'mongorestore';

/**
 * The tool's path: in `binDir` when configured (and only there), else on PATH. Rejects with badInput
 * (nothing has been touched yet) saying how to install the MongoDB Database Tools.
 */
export async function findTool(c: MongoComponent, tool: MongoTool): Promise<string> {
  const dirs = c.binDir ? [c.binDir] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const file = path.join(dir, tool);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // try the next folder
    }
  }
  throw badInput(
    c.binDir
      ? `${tool} not found in ${c.binDir} (components.${c.name}.binDir)`
      : `${tool} not found on PATH (components.${c.name} needs the MongoDB Database Tools)`,
    `install the MongoDB Database Tools (mongodump, mongorestore: the mongodb-database-tools package from ` +
      `MongoDB's repositories or https://www.mongodb.com/try/download/database-tools), then put them on PATH or set ` +
      `components.${c.name}.binDir to their folder; for tykdr's own tests, \`bash scripts/tools.sh\` builds them into .tools/bin`,
  );
}

export type ToolProcess = ChildProcessByStdio<null, Readable, Readable> & {
  /** The end of its stderr, collected from the start. */
  stderrTail: TextTail;
  /**
   * Settles once the tool has exited and its stdout and stderr are closed (so all of stderr is in
   * stderrTail). Rejects only when it could not be started.
   */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/**
 * Starts a Database Tool with the connection string kept out of its argv (which other users can read with
 * `ps`) and out of its environment: the URI goes into a `--config` YAML file (the only way the tools accept
 * it besides argv) that is created 0600 in a private 0700 folder, opened, unlinked at once, and handed to the
 * child as file descriptor 3 (`--config=/dev/fd/3`). Nothing stays on disk, even if tykdr is killed.
 * (A pipe cannot be used: Node's stdio pipes are sockets, which /dev/fd cannot reopen.)
 *
 * The caller must attach to stdout before its next turn of the event loop (Node discards what a child
 * wrote to an unread pipe once it has exited), and kill the child when it is no longer wanted.
 */
export async function spawnTool(bin: string, uri: string, args: string[]): Promise<ToolProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-mongo-config-'));
  const file = path.join(dir, 'tool.yaml');
  let handle;
  try {
    // JSON strings are valid YAML double-quoted scalars.
    await writeFile(file, `uri: ${JSON.stringify(uri)}\n`, { mode: 0o600, flag: 'wx' });
    handle = await open(file, 'r');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // Nothing is awaited from here on: see the contract above. The child holds its own copy of the descriptor.
  let child: ToolProcess;
  try {
    // stdout and stderr are pipes (the fourth entry makes @types/node fall back to plain ChildProcess).
    child = spawn(bin, ['--config=/dev/fd/3', ...args], { stdio: ['ignore', 'pipe', 'pipe', handle.fd] }) as ToolProcess;
    watchChild(child);
  } finally {
    handle.close().catch(() => undefined);
  }
  child.stderrTail = new TextTail(16 * 1024);
  child.stderr.on('data', (d: Buffer) => child.stderrTail.push(d));
  child.done = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
  child.done.catch(() => undefined);
  return child;
}

/** Keeps the last `limit` bytes of a stream of text (a tool's stderr). */
export class TextTail {
  #text = '';

  constructor(private readonly limit = 8192) {}

  push(chunk: Buffer | string): void {
    this.#text += chunk.toString();
    if (this.#text.length > this.limit * 2) this.#text = this.#text.slice(-this.limit);
  }

  lines(): string[] {
    return this.#text.slice(-this.limit).split('\n').map((l) => l.trim()).filter(Boolean);
  }
}

/** The tool's own words for what failed: its "Failed:" lines (or the last lines), without timestamps. */
export function failureSummary(lines: string[], max = 3): string {
  const strip = (l: string) => l.replace(/^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d{4}\s+/, '');
  const failed = lines.filter((l) => /\bFailed:|\berror\b/i.test(l)).map(strip);
  const picked = (failed.length ? failed : lines.map(strip)).slice(-max);
  return picked.length ? picked.join(' | ') : '(it printed nothing on stderr)';
}
