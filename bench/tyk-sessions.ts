/**
 * Deterministic generator of Tyk-like API key sessions, as RESP for `redis-cli --pipe`.
 *
 * Key i is always the same key with the same value (its PRNG is seeded by i), so a keyspace can be grown
 * from 100,000 to 1,000,000 keys by sending only keys 100,000..999,999.
 *
 * The values follow Tyk's SessionState JSON (user/session.go; keys as the gateway names them with hash_keys
 * on, `apikey-<32 hex digits>`), with what varies in real deployments varied: organisations, APIs and
 * policies drawn from pools, one to three access rights, per-key rate/quota figures, creation and update
 * times, developer ids and e-mail aliases, tags, some basic-auth and HMAC keys. Repeated field names
 * compress as they do in real sessions; ids, timestamps and counters do not. Some fields that most
 * deployments leave at zero values are left out, so that a value is about 790 bytes and Redis (which
 * LZF-compresses strings in the RDB) writes about 690 bytes per key: close to the issue's "1,000,000 keys,
 * about 650 MB of RDB". 70% of the keys have a TTL, as sessions with an expiry do.
 */

import { createHash } from 'node:crypto';

/** xorshift32 with a splitmix-style seed: fast, deterministic, good enough for test data. */
function rng(seed: number): () => number {
  let s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 1;
  for (let i = 0; i < 4; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
  }
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const HEX = '0123456789abcdef';
function hex(r: () => number, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += HEX[(r() * 16) | 0];
  return out;
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[(r() * xs.length) | 0]!;
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const pool = rng(0x7a11);
const ORGS = Array.from({ length: 12 }, () => hex(pool, 24));
const WORDS = ['orders', 'payments', 'catalog', 'users', 'search', 'billing', 'inventory', 'shipping', 'auth', 'reports',
  'partners', 'loyalty', 'pricing', 'media', 'notifications', 'accounts', 'claims', 'quotes', 'tracking', 'ledger'];
const APIS = Array.from({ length: 150 }, (_, i) => ({
  id: hex(pool, 32),
  name: `${WORDS[i % WORDS.length]!.replace(/^./, (c) => c.toUpperCase())} API${i >= WORDS.length ? ` v${1 + Math.floor(i / WORDS.length)}` : ''}`,
  versions: i % 3 === 0 ? ['Default'] : ['v1', 'v2'].slice(0, 1 + (i % 2)),
}));
const POLICIES = Array.from({ length: 60 }, () => hex(pool, 24));
const TAGS = ['gold', 'silver', 'bronze', 'internal', 'partner', 'mobile', 'web', 'trial', 'eu', 'us', 'apac'];
const DOMAINS = ['example.com', 'acme.io', 'corp.example.org', 'mail.test', 'partner.example.net'];
const FIRST = ['alex', 'sam', 'jo', 'kim', 'lee', 'max', 'ana', 'li', 'noor', 'eva', 'omar', 'ida', 'raj', 'mia', 'tom'];
const RATES = [[10, 1], [100, 60], [1000, 60], [50, 1], [5000, 3600], [20, 1]] as const;
const QUOTAS = [-1, 1000, 10000, 100000, 1000000] as const;

const T0 = 1_700_000_000; // Nov 2023

export interface Session {
  key: string;
  value: string;
  /** Seconds, or null for a key without expiry. */
  ttl: number | null;
}

export function session(i: number): Session {
  const r = rng(i + 1);
  const org = pick(r, ORGS);
  const created = T0 + int(r, 0, 60_000_000);
  const updated = created + int(r, 0, 5_000_000);
  const [rate, per] = pick(r, RATES);
  const quotaMax = pick(r, QUOTAS);
  const nRights = r() < 0.85 ? 1 : r() < 0.8 ? 2 : 3;
  const rights: Record<string, unknown> = {};
  for (let k = 0; k < nRights; k++) {
    const api = pick(r, APIS);
    rights[api.id] = {
      api_name: api.name,
      api_id: api.id,
      versions: api.versions,
      allowed_urls: r() < 0.15 ? [{ url: `/${pick(r, WORDS)}/{id}`, methods: ['GET', 'POST'] }] : [],
      limit: null,
    };
  }
  const policy = r() < 0.8 ? [pick(r, POLICIES)] : [];
  const user = `${pick(r, FIRST)}.${hex(r, 6)}@${pick(r, DOMAINS)}`;
  const basic = r() < 0.08;
  const hmac = r() < 0.05;
  const s = {
    allowance: rate - int(r, 0, rate),
    rate,
    per,
    date_created: new Date(created * 1000 + int(r, 0, 999)).toISOString(),
    expires: r() < 0.6 ? updated + int(r, 86_400, 31_536_000) : 0,
    quota_max: quotaMax,
    quota_renews: updated + 2_592_000,
    quota_remaining: quotaMax < 0 ? -1 : int(r, 0, quotaMax),
    quota_renewal_rate: quotaMax < 0 ? -1 : 2_592_000,
    access_rights: rights,
    org_id: org,
    basic_auth_data: basic ? { password: `$2a$10$${hex(r, 53)}`, hash_type: 'bcrypt' } : { password: '', hash_type: '' },
    hmac_enabled: hmac,
    ...(hmac ? { hmac_string: hex(r, 32) } : {}),
    is_inactive: r() < 0.02,
    apply_policies: policy,
    enable_detailed_recording: r() < 0.1,
    meta_data: { tyk_developer_id: hex(r, 24), user_email: user },
    tags: r() < 0.5 ? [pick(r, TAGS)] : [],
    alias: user,
    last_updated: String(updated),
  };
  // Tyk hashes keys (hash_keys: true, murmur128): "apikey-" + 32 hex digits; MD5 of the index stands in
  // for the hash (unique, unlike 32 hex digits drawn from a 32-bit PRNG state).
  const key = `apikey-${createHash('md5').update(`key-${i}`).digest('hex')}`;
  const ttl = r() < 0.7 ? int(r, 3_600, 90 * 86_400) : null;
  return { key, value: JSON.stringify(s), ttl };
}

function bulk(s: string): string {
  return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
}

/** RESP for keys [from, to): SET key value [EX ttl], in strings of about `batchBytes`. */
export function* sessionsResp(from: number, to: number, batchBytes = 1 << 20): Generator<string> {
  let buf = '';
  for (let i = from; i < to; i++) {
    const { key, value, ttl } = session(i);
    buf += ttl === null ? `*3\r\n$3\r\nSET\r\n${bulk(key)}${bulk(value)}` : `*5\r\n$3\r\nSET\r\n${bulk(key)}${bulk(value)}$2\r\nEX\r\n${bulk(String(ttl))}`;
    if (buf.length >= batchBytes) {
      yield buf;
      buf = '';
    }
  }
  if (buf.length > 0) yield buf;
}
