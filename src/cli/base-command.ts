import { stat } from 'node:fs/promises';
import { Command, Flags, type Interfaces } from '@oclif/core';
import { loadConfig, type Config, type ConfigPurpose } from '../core/config/load.js';
import { MAX_TIMER_MS, parseDuration } from '../core/duration.js';
import { EXIT_CODE_TABLE, EXIT_CODES, TykdrError, badInput, exitCodeOf, isAbortError, storeError } from '../core/errors.js';

export const EXIT_CODES_HELP = [
  'EXIT CODES',
  ...EXIT_CODE_TABLE.map((e) => `  ${String(e.code).padEnd(4)} ${e.meaning}`),
].join('\n');

/**
 * Shared flags and error handling. Commands stay thin: parse flags, call one service, render.
 * User errors print their message and fix (never a stack unless --debug) and exit with the code from
 * the one table in core/errors.ts.
 */
/** Set on globalThis by a run that did its command's whole work (read by bin/code-cache.js at exit). */
const WHOLE_RUN = Symbol.for('tykdr.code-cache.whole-run');

export abstract class TykdrCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    config: Flags.string({
      char: 'c',
      summary: 'Path to tykdr.yaml.',
      env: 'TYKDR_CONFIG',
      default: 'tykdr.yaml',
      helpGroup: 'GLOBAL',
    }),
    debug: Flags.boolean({ summary: 'Show stack traces and causes of errors.', helpGroup: 'GLOBAL' }),
  };

  protected flags!: Interfaces.InferredFlags<(typeof TykdrCommand)['baseFlags'] & T['flags']>;
  protected args!: Interfaces.InferredArgs<T['args']>;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof TykdrCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as typeof this.flags;
    this.args = args as typeof this.args;
  }

  /**
   * Loads --config; `purpose` decides which parts must have their \${VARS} set. `reads`: the command reads
   * snapshots, so a local store folder that does not exist is an error (exit 4, as a missing bucket is),
   * not an empty list: a mistyped store.path must not read as "no snapshots".
   */
  protected async loadConfig(purpose: ConfigPurpose = 'all', opts: { reads?: boolean } = {}): Promise<Config> {
    const config = await loadConfig(this.flags.config, { purpose });
    if (opts.reads) await requireStoreFolder(config.store, config.file);
    return config;
  }

  /**
   * A run that did its command's whole work and returned tells bin/code-cache.js so: only such a run's compiled code is
   * kept as the command's V8 code cache (a help, a dry run or a failure compiles part of the path; kept for good, it
   * would make every later run start slower).
   */
  public override async finally(err: Error | undefined): Promise<unknown> {
    if (err === undefined && !this.partialRun()) (globalThis as Record<symbol, unknown>)[WHOLE_RUN] = true;
    return super.finally(err);
  }

  /** True when this run does only part of its command's work (restore --dry-run). */
  protected partialRun(): boolean {
    return false;
  }

  /** Progress and notes go to stderr so stdout stays clean for data and --json. */
  protected note(line: string): void {
    if (!this.jsonEnabled()) process.stderr.write(`${line}\n`);
  }

  /** An error as text on stderr ("Error: ...", "Fix: ..."), as a failed command prints it; nothing with --json. */
  protected printError(err: Error): void {
    if (this.jsonEnabled()) return;
    process.stderr.write(`Error: ${err.message}\n`);
    if (err instanceof TykdrError && err.fix) process.stderr.write(`Fix: ${err.fix}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own parse errors (unknown flag, missing arg) are bad input too.
    if (!(err instanceof TykdrError) && !isAbortError(err) && err.oclif?.exit !== undefined) {
      if (err.oclif.exit === 0) throw err; // --help / --version exits
      err = new TykdrError('badInput', parseErrorMessage(err.message), { fix: 'see --help' });
    }
    const code = exitCodeOf(err);
    const debug = process.argv.includes('--debug');
    if (this.jsonEnabled()) {
      this.logJson({ error: errorJson(err) });
    } else {
      this.printError(err);
      if (code === EXIT_CODES.internal) process.stderr.write('This is a bug in tykdr; run with --debug and report it.\n');
      if (debug) {
        process.stderr.write(`${err.stack ?? ''}\n`);
        if (err.cause) process.stderr.write(`Caused by: ${String((err.cause as Error).stack ?? err.cause)}\n`);
      }
    }
    process.exitCode = code;
    return undefined;
  }
}

/** An error as --json carries it: { kind, exit_code, message, fix }. */
export function errorJson(err: Error): { kind: string; exit_code: number; message: string; fix: string | null } {
  const code = exitCodeOf(err);
  const kind = err instanceof TykdrError ? err.kind : code === EXIT_CODES.interrupted ? 'interrupted' : 'internal';
  return { kind, exit_code: code, message: err.message, fix: (err as TykdrError).fix ?? null };
}

/** For commands that read snapshots: a local store's folder must exist (`tykdr backup` creates it). */
export async function requireStoreFolder(store: Config['store'], configFile: string): Promise<void> {
  if (store.kind !== 'local') return;
  const dir = store.path;
  let why: string | undefined;
  try {
    if (!(await stat(dir)).isDirectory()) why = 'is not a folder';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`;
  }
  if (why !== undefined) {
    throw storeError(
      `local store ${dir} ${why} (store.path in ${configFile})`,
      'check store.path for a typo (`tykdr backup` creates the folder on its first run)',
    );
  }
}

/**
 * oclif's parse errors on one line, with their reason: "Parsing --grace \n\tExpected an integer ... -1" and
 * "The following error occurred:\n  --before=1h cannot also be provided when using --snapshot" lose the
 * header and the "See more help" footer, keep every reason.
 */
export function parseErrorMessage(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help with/.test(l) && !/^The following errors? occurred:?$/.test(l));
  if (lines.length === 0) return message.trim();
  const [first, ...rest] = lines;
  // "Parsing --grace" + "Expected ...": one sentence naming the flag and the rule.
  if (/^Parsing --\S+$/.test(first!) && rest.length > 0) return `${first!.replace(/^Parsing /, '')}: ${rest.join('; ')}`;
  return lines.join('; ');
}

/** How long a command may take to stop after SIGINT/SIGTERM before it exits anyway. */
export const DEFAULT_GRACE_MS = 10_000;

/** TYKDR_GRACE: seconds ("10") or a duration ("10s", "1m"); unset or empty: 10 s. */
export function graceFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TYKDR_GRACE?.trim();
  if (raw === undefined || raw === '') return DEFAULT_GRACE_MS;
  const ms = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : parseDuration(raw);
  if (ms === null) throw badInput(`TYKDR_GRACE "${raw}" is not a number of seconds or a duration`, 'write it like 10 or 30s');
  if (ms > MAX_TIMER_MS / 2) {
    throw badInput(`TYKDR_GRACE "${raw}" is longer than tykdr can wait (${Math.floor(MAX_TIMER_MS / 2000)} s)`, 'write it like 10 or 30s');
  }
  return ms;
}

/**
 * An AbortSignal tied to SIGINT and SIGTERM: the first signal aborts the work (which then cleans up);
 * if the process is still running `graceMs` later (a socket that never answers, a clean-up that hangs),
 * it exits with 130 anyway; a second signal exits at once. After an abort, `dispose` leaves the handlers
 * and the deadline in place (neither keeps the process alive), so the bound holds until the process ends.
 */
export function interruptSignal(opts: { graceMs?: number; note?: string } = {}): { signal: AbortSignal; dispose(): void } {
  const graceMs = opts.graceMs ?? graceFromEnv();
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) {
      process.stderr.write(`${sig} received again: exiting now.\n`);
      process.exit(EXIT_CODES.interrupted);
    }
    process.stderr.write(
      `\n${sig} received: stopping${opts.note ? `; ${opts.note}` : ''} (exits within ${Math.round(graceMs / 1000)}s; a second signal exits at once).\n`,
    );
    ac.abort(new TykdrError('interrupted', `interrupted by ${sig}`));
    const deadline = setTimeout(() => {
      process.stderr.write(`still running ${Math.round(graceMs / 1000)}s after ${sig} (TYKDR_GRACE): exiting now; clean-up may be incomplete.\n`);
      process.exit(EXIT_CODES.interrupted);
    }, graceMs);
    deadline.unref();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: ac.signal,
    dispose: () => {
      if (ac.signal.aborted) return;
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
