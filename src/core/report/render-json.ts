import type { RestoreReport } from '../restore/types.js';

/**
 * Keys that come first wherever they appear, in this order; every other key follows alphabetically.
 * The output therefore depends only on the report's content, not on the order an engine built it in,
 * and two reports diff line by line.
 */
const KEY_ORDER = [
  'format', 'id', 'kind', 'status', 'dry_run', 'plan', 'snapshot', 'host', 'tool_version',
  'incident_at', 'started_at', 'finished_at', 'rto', 'rpo', 'warnings', 'steps',
  'name', 'file', 'version', 'created_at', 'location', 'component', 'action', 'reason',
  'tier', 'objectiveSeconds', 'achievedSeconds', 'met', 'last_verified_at', 'consistent_at',
  'startedAt', 'finishedAt', 'durationMs', 'detail', 'details', 'evidence', 'checks',
];
const RANK = new Map(KEY_ORDER.map((k, i) => [k, i]));

function compareKeys(a: string, b: string): number {
  const ra = RANK.get(a) ?? Infinity;
  const rb = RANK.get(b) ?? Infinity;
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A JSON-safe copy with keys in a stable order. Never throws on what an engine may put in free-form
 * details or evidence: bigints become decimal strings, Dates (anything with toJSON) their JSON form,
 * functions, symbols and undefined are dropped like JSON.stringify drops them, and a repeated
 * (circular) object becomes "[circular]".
 */
export function toPlain(value: unknown, seen: Set<object> = new Set()): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return toPlain(withToJson.toJSON(), seen);
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => toPlain(v, seen) ?? null);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort(compareKeys)) {
      const v = toPlain((value as Record<string, unknown>)[key], seen);
      if (v !== undefined && typeof v !== 'function' && typeof v !== 'symbol') out[key] = v;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** One line of JSON, for evidence blocks. */
export function compactJson(value: unknown): string {
  return JSON.stringify(toPlain(value)) ?? 'null';
}

/** The report as pretty-printed JSON with a stable key order and a trailing newline. */
export function renderJson(r: RestoreReport): string {
  return `${JSON.stringify(toPlain(r), null, 2)}\n`;
}
