/**
 * One table maps every failure to an exit code. Commands print `message` (and `fix`), never a stack
 * unless --debug. Messages must name the bad value and never contain a secret.
 */
export const EXIT_CODES = {
  ok: 0,
  /** Anything not classified below: a bug in tykdr. */
  internal: 1,
  /** Bad flags, invalid config, unknown snapshot id, no recipient configured, unreadable input path. */
  badInput: 2,
  /** A source (Redis, PostgreSQL, MongoDB, a config path) could not be reached or refused us. */
  sourceUnreachable: 3,
  /** The store (local folder, S3 bucket) could not be read or written. */
  storeError: 4,
  /** Data failed a check: RDB checksum, truncated dump, SHA-256 mismatch, decryption failure. */
  integrityError: 5,
  /** A restore target could not be reached or refused the restore. */
  targetError: 6,
  /** A verification after restore failed. */
  verifyFailed: 7,
  /** The restore or drill worked but missed an RTO or RPO objective of its tier. */
  objectiveMissed: 8,
  /** Stopped by SIGINT or SIGTERM (conventional 128+SIGINT). */
  interrupted: 130,
} as const;

export type ErrorKind = keyof typeof EXIT_CODES;

export const EXIT_CODE_TABLE: ReadonlyArray<{ code: number; kind: ErrorKind; meaning: string }> = [
  { code: 0, kind: 'ok', meaning: 'success' },
  { code: 1, kind: 'internal', meaning: 'unexpected internal error (a bug: please report it with --debug output)' },
  { code: 2, kind: 'badInput', meaning: 'bad input: flags, config file, snapshot id, missing key or recipient' },
  { code: 3, kind: 'sourceUnreachable', meaning: 'a source (Redis, database, config path) is unreachable or refused access' },
  { code: 4, kind: 'storeError', meaning: 'the snapshot store (local folder or S3 bucket) failed' },
  { code: 5, kind: 'integrityError', meaning: 'integrity check failed (checksum, truncated dump, decryption)' },
  { code: 6, kind: 'targetError', meaning: 'a restore target is unreachable or refused the restore' },
  { code: 7, kind: 'verifyFailed', meaning: 'a post-restore verification failed' },
  { code: 8, kind: 'objectiveMissed', meaning: 'a restore or drill worked but missed an RTO or RPO objective' },
  { code: 130, kind: 'interrupted', meaning: 'interrupted by SIGINT or SIGTERM: a backup writes no manifest; a restore removes its staged data and keeps its journal (restore --resume)' },
];

export interface TykdrErrorOptions {
  /** What the user should do about it. */
  fix?: string;
  cause?: unknown;
}

/** An error meant for the user: a clear message, a fix, and an exit code. */
export class TykdrError extends Error {
  readonly kind: ErrorKind;
  readonly fix: string | undefined;

  constructor(kind: ErrorKind, message: string, opts: TykdrErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TykdrError';
    this.kind = kind;
    this.fix = opts.fix;
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export const badInput = (msg: string, fix?: string, cause?: unknown) => new TykdrError('badInput', msg, { fix, cause });
export const sourceUnreachable = (msg: string, fix?: string, cause?: unknown) =>
  new TykdrError('sourceUnreachable', msg, { fix, cause });
export const storeError = (msg: string, fix?: string, cause?: unknown) => new TykdrError('storeError', msg, { fix, cause });
export const integrityError = (msg: string, fix?: string, cause?: unknown) =>
  new TykdrError('integrityError', msg, { fix, cause });

/** True when the error came from an AbortSignal (Ctrl-C, SIGTERM, or a sibling failure). */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof TykdrError) return err.exitCode;
  if (isAbortError(err)) return EXIT_CODES.interrupted;
  return EXIT_CODES.internal;
}
