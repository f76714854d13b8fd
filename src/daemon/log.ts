import { Secret } from '../core/secret.js';
import { TykdrError } from '../core/errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The fields a daemon log line may carry besides time, level and msg. */
export interface LogFields {
  job?: string;
  component?: string;
  snapshot?: string;
  duration_ms?: number;
  /** An Error (or anything thrown): logged as its message, redacted, plus `fix` for TykdrErrors. */
  error?: unknown;
  [extra: string]: unknown;
}

/**
 * Structured logs: one JSON object per line. Contract: every string that reaches the output has been
 * through `redact` (credentials in URLs, known secret values), and `Secret`s render as "[redacted]".
 * Writing never throws.
 */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Removes credentials and secret values from a piece of text (for webhook bodies, /hello output). */
  redact(text: string): string;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface JsonLoggerOptions {
  /** Where lines go; default process.stdout. */
  write?: (line: string) => void;
  level?: LogLevel;
  /** Values that must never be printed (from `secretValues(config)`). */
  secrets?: string[];
  now?: () => Date;
}

export function jsonLogger(opts: JsonLoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => void process.stdout.write(line));
  const min = ORDER[opts.level ?? 'info'];
  const now = opts.now ?? (() => new Date());
  const redact = makeRedactor(opts.secrets ?? []);
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    const { error, ...rest } = fields;
    const line: Record<string, unknown> = { time: now().toISOString(), level, msg: redact(msg) };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) line[k] = clean(v, redact);
    if (error !== undefined) {
      line.error = redact(errorMessage(error));
      if (error instanceof TykdrError) {
        line.error_kind = error.kind;
        if (error.fix) line.fix = redact(error.fix);
      }
    }
    try {
      write(`${JSON.stringify(line)}\n`);
    } catch {
      // A closed stdout must not take the daemon down.
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    redact,
  };
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, redact: (t) => t };

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function clean(v: unknown, redact: (t: string) => string): unknown {
  if (typeof v === 'string') return redact(v);
  if (v instanceof Secret) return String(v);
  if (Array.isArray(v)) return v.map((x) => clean(x, redact));
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x, redact)]));
  }
  return v;
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi;
const SECRET_PARAMS = /([?&](?:token|access_token|password|passwd|secret|key|api[_-]?key|auth|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s#"']*/gi;

/**
 * Builds the redaction function: URL credentials (scheme://user:pass@host), credential-looking query
 * parameters, and every known secret value (longest first, so a secret containing another is removed whole).
 */
export function makeRedactor(secrets: string[]): (text: string) => string {
  const values = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text.replace(URL_USERINFO, '$1[redacted]@').replace(SECRET_PARAMS, '$1[redacted]');
    for (const v of values) out = out.split(v).join('[redacted]');
    return out;
  };
}

/** Every Secret's value anywhere in a (config) object graph, for the redactor. */
export function secretValues(root: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<object>();
  const walk = (v: unknown) => {
    if (v instanceof Secret) {
      out.push(v.reveal());
      return;
    }
    if (!v || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) walk(x);
  };
  walk(root);
  return out;
}
