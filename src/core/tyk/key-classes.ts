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

export function classifyKey(key: string | Buffer): KeyClass {
  // Tyk's prefixes are ASCII; latin1 decoding is exact for them and never throws on binary keys.
  const k = typeof key === 'string' ? key : key.toString('latin1', 0, Math.min(key.length, 512));
  for (const [re, cls] of RULES) if (re.test(k)) return cls;
  return 'other';
}

export function emptyClassCounts(): Record<KeyClass, number> {
  return Object.fromEntries(KEY_CLASSES.map((c) => [c, 0])) as Record<KeyClass, number>;
}
