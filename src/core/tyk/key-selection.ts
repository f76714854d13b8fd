import { badInput } from '../errors.js';
import { classifyKey, KEY_CLASSES, type KeyClass } from './key-classes.js';

/**
 * A selective Redis restore: which keys of a snapshot are put back, and what happens to keys the target
 * already holds. Filters of different kinds must all match (AND); values of one kind are alternatives (OR).
 *
 *   patterns  Redis glob patterns on the key name (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as SCAN MATCH
 *   classes   Tyk key classes (key-classes.ts); empty: the component's restore.classes
 *   orgs      organisation ids: by name (orgkey.<org>, cert-raw-<org>..., cert-<org>-index,
 *             oauth-data.*.oauth-client-index.<org>), else by a JSON string value's "org_id" (sessions).
 *             OAuth clients and tokens hold no org id in Redis: --org alone leaves them out (use --api)
 *   apis      API ids: by name (oauth-data.<api>.*), else by a JSON string value's "access_rights" (sessions)
 *   overwrite true: RESTORE ... REPLACE; false: a key the target holds is kept as it is, and listed
 *
 * Keys that are not selected are never touched: no FLUSH, no file swap, no DEL.
 */
export interface KeySelection {
  patterns: string[];
  classes: KeyClass[];
  orgs: string[];
  apis: string[];
  overwrite: boolean;
}

export function describeSelection(s: KeySelection): string {
  const parts = [
    s.patterns.length ? `keys ${s.patterns.join(' | ')}` : '',
    s.classes.length ? `classes ${s.classes.join(', ')}` : '',
    s.orgs.length ? `org ${s.orgs.join(' | ')}` : '',
    s.apis.length ? `api ${s.apis.join(' | ')}` : '',
  ].filter(Boolean);
  return `${parts.join(' and ') || 'every key of the restored classes'}; ${s.overwrite ? 'existing keys overwritten' : 'existing keys kept'}`;
}

/** Checks flag values (names the bad value and the fix); throws badInput. */
export function checkSelection(s: KeySelection): KeySelection {
  for (const c of s.classes) {
    if (!(KEY_CLASSES as readonly string[]).includes(c)) throw badInput(`--class "${c}" is not a Tyk key class`, `use one of: ${KEY_CLASSES.join(', ')}`);
  }
  for (const p of s.patterns) {
    if (p.length === 0) throw badInput('--key "" is empty', 'give a Redis glob pattern, e.g. --key "apikey-*"');
    globToRegExp(p);
  }
  for (const [flag, list] of [['--org', s.orgs], ['--api', s.apis]] as const) {
    for (const v of list) {
      if (!/^[\w.:-]{1,200}$/.test(v)) throw badInput(`${flag} "${v.slice(0, 60)}" is not an id (letters, digits, . _ : -)`, `give the ${flag === '--org' ? 'organisation' : 'API'} id as Tyk stores it`);
    }
  }
  return s;
}

/** A Redis glob (stringmatchlen) as an anchored RegExp over the key's latin1 text. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '[^]*';
    else if (ch === '?') re += '[^]';
    else if (ch === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) throw badInput(`--key "${glob}" has a "[" without its "]"`, 'close the set, or escape it as \\[');
      let body = glob.slice(i + 1, end);
      const neg = body.startsWith('^');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/[\]\\]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** What the name alone says about a key: selected, not, or it depends on the (string) value. */
export type NameVerdict = 'yes' | 'no' | 'value';

/** The longest string value decoded to decide on org or API (a session is a few KiB). */
export const MAX_DECIDING_VALUE = 4 * 1024 * 1024;

/**
 * The selection compiled: decides per key from its name, and, for --org/--api on keys whose name does not
 * tell (sessions), from its string value. Pure: no I/O, no counting.
 */
export class KeySelector {
  private readonly patterns: RegExp[];
  private readonly classes: ReadonlySet<KeyClass>;

  constructor(
    readonly selection: KeySelection,
    /** The classes restored when the selection names none (restore.classes). */
    baseClasses: readonly KeyClass[],
  ) {
    this.patterns = selection.patterns.map(globToRegExp);
    this.classes = new Set(selection.classes.length ? selection.classes : baseClasses);
  }

  get restoredClasses(): KeyClass[] {
    return [...this.classes];
  }

  byName(key: Buffer, cls: KeyClass = classifyKey(key)): NameVerdict {
    if (!this.classes.has(cls)) return 'no';
    const k = key.toString('latin1');
    if (this.patterns.length > 0 && !this.patterns.some((p) => p.test(k))) return 'no';
    let needValue = false;
    if (this.selection.orgs.length > 0) {
      const v = orgByName(k, this.selection.orgs);
      // OAuth clients and tokens hold no org id: only --api (or --key) selects them.
      if (v === 'no' || (v === 'neutral' && this.selection.apis.length === 0)) return 'no';
      needValue ||= v === 'value';
    }
    if (this.selection.apis.length > 0) {
      const v = apiByName(k, this.selection.apis);
      if (v === 'no') return 'no';
      needValue ||= v === 'value';
    }
    return needValue ? 'value' : 'yes';
  }

  /** For a key byName answered 'value': its string value (null when the value is not a string, or too long). */
  byValue(key: Buffer, value: Buffer | null): boolean {
    if (value === null) return false;
    const k = key.toString('latin1');
    const byOrg = this.selection.orgs.length > 0 && orgByName(k, this.selection.orgs) === 'value';
    const byApi = this.selection.apis.length > 0 && apiByName(k, this.selection.apis) === 'value';
    // Most values are not of the org or API asked for: an id that is nowhere in the bytes cannot be in the
    // JSON (ids are letters, digits and . _ : -, which JSON writers, Go's included, never escape), so the
    // value is not parsed at all.
    if (byOrg && !this.selection.orgs.some((o) => value.includes(o))) return false;
    if (byApi && !this.selection.apis.some((a) => value.includes(a))) return false;
    const doc = jsonObject(value);
    if (doc === null) return false;
    if (byOrg) {
      if (typeof doc.org_id !== 'string' || !this.selection.orgs.includes(doc.org_id)) return false;
    }
    if (byApi) {
      const rights = doc.access_rights;
      if (rights === null || typeof rights !== 'object' || !this.selection.apis.some((a) => Object.hasOwn(rights, a))) return false;
    }
    return true;
  }
}

function orgByName(k: string, orgs: string[]): NameVerdict | 'neutral' {
  if (k.startsWith('orgkey.')) return orgs.includes(k.slice('orgkey.'.length)) ? 'yes' : 'no';
  // Tyk's certificate ids are the org id followed by the certificate's SHA-256.
  if (k.startsWith('cert-raw-')) return orgs.some((o) => k.startsWith(`cert-raw-${o}`)) ? 'yes' : 'no';
  const idx = /^cert-([^]*)-index(-migrated)?$/.exec(k);
  if (idx) return orgs.includes(idx[1]!) ? 'yes' : 'no';
  const oauthIdx = /^oauth-data\.[^]*\.oauth-client-index\.([^]*)$/.exec(k);
  if (oauthIdx) return orgs.includes(oauthIdx[1]!) ? 'yes' : 'no';
  if (k.startsWith('oauth-data.')) return 'neutral';
  return 'value';
}

function apiByName(k: string, apis: string[]): NameVerdict {
  if (k.startsWith('oauth-data.')) return apis.some((a) => k.startsWith(`oauth-data.${a}.`)) ? 'yes' : 'no';
  if (k.startsWith('cert-') || k.startsWith('orgkey.')) return 'no';
  return 'value';
}

function jsonObject(value: Buffer): Record<string, unknown> | null {
  let i = 0;
  while (i < value.length && (value[i] === 0x20 || value[i] === 0x0a || value[i] === 0x0d || value[i] === 0x09)) i++;
  if (value[i] !== 0x7b) return null; // "{"
  try {
    const v: unknown = JSON.parse(value.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// Key names that carry a token (unhashed keys, or tokens of issued OAuth grants): shown as Tyk logs them.
const CREDENTIAL_NAMES = /^(apikey-|tyk-admin-api-|quota-|rate-limit-|oauth-data\.[^]*\.oauth-(access|refresh|authorize)\.)/;

/**
 * A key name for lists in reports and output. Names that embed a credential (an API key, a Dashboard
 * key, an OAuth token) are obfuscated as Tyk's own logs do: prefix, "****", last 4 characters.
 */
export function displayKeyName(key: Buffer | string): string {
  const k = typeof key === 'string' ? key : key.toString('utf8');
  const m = CREDENTIAL_NAMES.exec(k);
  if (!m) return k.length > 300 ? `${k.slice(0, 300)}…(${k.length} chars)` : k;
  const rest = k.slice(m[0].length);
  return `${m[0]}****${rest.length > 8 ? rest.slice(-4) : ''}`;
}
