/**
 * Tyk's Redis keyspace sorted into backup classes (shared/TYK-NOTES.md, from the Gateway source v5.14).
 *
 *   must       credentials and certificates: losing them locks users out
 *   should     issued tokens, Dashboard keys, plugin data: losing them forces re-authentication
 *   quota      quota counters: restoring keeps usage as of the snapshot, skipping resets it (a choice)
 *   ephemeral  rate limits, caches, locks, short-lived auth codes: rebuilt by the gateway
 *   analytics  records waiting for Pump; Pump pops them destructively, so restoring double-counts
 *   mdcb       MDCB data-plane emergency copies, rebuilt on reload
 *   other      anything Tyk does not write (kept by default: nothing is dropped silently)
 */
export const KEY_CLASSES = ['must', 'should', 'quota', 'ephemeral', 'analytics', 'mdcb', 'other'] as const;
export type KeyClass = (typeof KEY_CLASSES)[number];

// Order matters: the first match wins (oauth-authorize before the broader oauth rules).
const RULES: ReadonlyArray<[RegExp, KeyClass]> = [
  [/^apikey-/, 'must'],
  [/^orgkey\./, 'must'],
  [/^oauth-data\.[^]*\.oauth-authorize\./, 'ephemeral'],
  [/^oauth-data\.[^]*\.oauth-(clientid\.|clientset|client-index\.)/, 'must'],
  [/^oauth-data\.[^]*\.oauth-(access\.|refresh\.|client-tokens\.)/, 'should'],
  [/^cert-raw-/, 'must'],
  [/^cert-[^]*-index(-migrated)?$/, 'must'],
  [/^tyk-admin-api-/, 'should'],
  [/^coprocess-data:/, 'should'],
  [/^quota-/, 'quota'],
  [/^analytics-tyk-system-analytics/, 'analytics'],
  [/^rpc:node-(definition|policy)-backup:/, 'mdcb'],
  [/^(rate-limit-|cache-|host-checker:|livenesscheck-|webhook\.cache\.|redis-lock-|gateway-lock|tyk-host-checker|tyk-uptime)/, 'ephemeral'],
  [/(cooldown|-lock$|:lock$)/, 'ephemeral'],
];

/**
 * Literal prefixes that decide a key's class alone: no earlier rule can match a key that starts with one, so
 * their verdict is the rules' verdict. Keys starting with VARIABLE_PREFIXES go through the rules.
 */
const DECIDING_PREFIXES: ReadonlyArray<[Buffer, KeyClass]> = (
  [
    ['apikey-', 'must'],
    ['orgkey.', 'must'],
    ['cert-raw-', 'must'],
    ['tyk-admin-api-', 'should'],
    ['coprocess-data:', 'should'],
    ['quota-', 'quota'],
    ['analytics-tyk-system-analytics', 'analytics'],
    ...['rate-limit-', 'cache-', 'host-checker:', 'livenesscheck-', 'webhook.cache.', 'redis-lock-', 'gateway-lock', 'tyk-host-checker', 'tyk-uptime'].map(
      (p) => [p, 'ephemeral'] as [string, KeyClass],
    ),
  ] as Array<[string, KeyClass]>
).map(([p, c]) => [Buffer.from(p, 'latin1'), c]);
const VARIABLE_PREFIXES = ['oauth-data.', 'cert-', 'rpc:node-'].map((p) => Buffer.from(p, 'latin1'));
const COOLDOWN = Buffer.from('cooldown', 'latin1');
const DASH = 0x2d;
const COLON = 0x3a;
const LOCK = Buffer.from('lock', 'latin1');
/** Rules look at a key's first bytes only (a key can be 64 KiB). */
const LOOK = 512;

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  const n = prefix.length;
  if (key.length < n) return false;
  for (let i = 0; i < n; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/**
 * A key's class, first rule first. A Buffer is read on its bytes where a literal prefix decides (no string per
 * key: a backup classifies every key of the dump); the same verdicts as the rules on its latin1 text.
 */
export function classifyKey(key: string | Buffer): KeyClass {
  if (typeof key !== 'string') {
    const b = key.length > LOOK ? key.subarray(0, LOOK) : key;
    let variable = false;
    for (const p of VARIABLE_PREFIXES) if (p[0] === b[0] && startsWith(b, p)) variable = true;
    if (!variable) {
      for (const [p, cls] of DECIDING_PREFIXES) if (p[0] === b[0] && startsWith(b, p)) return cls;
      // Only the last rule is left: "cooldown" anywhere, or "-lock" / ":lock" at the end.
      const n = b.length;
      const lockEnd = n >= 5 && (b[n - 5] === DASH || b[n - 5] === COLON) && b[n - 4] === LOCK[0] && b[n - 3] === LOCK[1] && b[n - 2] === LOCK[2] && b[n - 1] === LOCK[3];
      return lockEnd || b.indexOf(COOLDOWN) >= 0 ? 'ephemeral' : 'other';
    }
  }
  // Tyk's prefixes are ASCII; latin1 decoding is exact for them and never throws on binary keys.
  const k = typeof key === 'string' ? key : key.toString('latin1', 0, Math.min(key.length, LOOK));
  for (const [re, cls] of RULES) if (re.test(k)) return cls;
  return 'other';
}

export function emptyClassCounts(): Record<KeyClass, number> {
  return Object.fromEntries(KEY_CLASSES.map((c) => [c, 0])) as Record<KeyClass, number>;
}
