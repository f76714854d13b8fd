import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * pg_dump writes its archive through stdio's default buffer for a pipe (4 KiB), so a 719 MB dump reaches tykdr in
 * ~95,000 reads of ~7.6 KB, and every read costs the event loop. Run under coreutils' `stdbuf -o 1M`, pg_dump
 * writes 1 MiB at a time and the pipe yields its full 64 KiB per read (~12,000 reads): the bytes are the same.
 *
 * `bigStdout(pg_dump)` (start it early; it never rejects) resolves to a function giving the command and arguments to
 * spawn: through stdbuf when a probe of this very pg_dump under it (`stdbuf -o 1M <pg_dump> --version`) exited 0
 * with nothing on stderr; otherwise (no stdbuf, a stdbuf that cannot preload its library, a loader warning) the
 * plain command. The probe's verdict is kept per pg_dump path.
 */
const STDBUF_ARGS = ['-o', '1M'];
const PROBE_TIMEOUT_MS = 5000;
const verdicts = new Map<string, Promise<string | null>>();

export type SpawnWith = (args: string[]) => { command: string; args: string[] };

export async function bigStdout(command: string, env: NodeJS.ProcessEnv): Promise<SpawnWith> {
  let verdict = verdicts.get(command);
  if (!verdict) {
    verdict = probe(command, env);
    verdicts.set(command, verdict);
  }
  const stdbuf = await verdict;
  return (args) => (stdbuf ? { command: stdbuf, args: [...STDBUF_ARGS, command, ...args] } : { command, args });
}

function probe(command: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  const stdbuf = onPath('stdbuf', env.PATH ?? process.env.PATH ?? '');
  if (!stdbuf) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile(stdbuf, [...STDBUF_ARGS, command, '--version'], { env, timeout: PROBE_TIMEOUT_MS }, (err, stdout, stderr) => {
      resolve(!err && stderr.length === 0 && /pg_dump/.test(stdout) ? stdbuf : null);
    });
  });
}

function onPath(name: string, PATH: string): string | null {
  for (const dir of PATH.split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}
