import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './paths.js';

export interface StreamProcess {
  child: ChildProcess;
  /** Everything it printed to stderr so far (its progress lines). */
  stderr: () => string;
  /** Resolves once the base snapshot is stored and the chain has started. */
  started: Promise<void>;
  exited: Promise<number | null>;
}

/** Runs `tykdr stream --config CONFIG --segment 1s` (point-in-time capture) as its own process, as an operator would. */
export function startStream(config: string, opts: { cwd?: string } = {}): StreamProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'stream', '--config', config, '--segment', '1s'], {
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => (resolveStarted = r));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (/chain \S+ started/.test(err)) resolveStarted();
  });
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, started, exited };
}
