import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/** Facts read from a gateway tyk.conf that must travel with the Redis data they belong to. */
export interface TykConfFacts {
  /** Path inside the config tarball. */
  file: string;
  hash_keys: boolean;
  hash_key_function: string;
  /** scrypt fingerprint of `secret`: lets a restore tell whether the target gateway has the same secret. */
  secret_fingerprint: string | null;
  /** Same for security.private_certificate_encoding_secret, which encrypts certificate private keys when set. */
  certificate_secret_fingerprint: string | null;
}

const N = 1 << 14;

/**
 * A salted scrypt fingerprint: comparing two values needs the value itself, and the fingerprint alone
 * resists guessing (a bare SHA-256 of a short shared secret would not). Format: scrypt:N:salt:hash.
 */
export function fingerprintSecret(value: string, salt: Buffer = randomBytes(16)): string {
  const hash = scryptSync(value, salt, 16, { N, r: 8, p: 1 });
  return `scrypt:${N}:${salt.toString('base64url')}:${hash.toString('hex')}`;
}

export function secretMatchesFingerprint(value: string, fingerprint: string): boolean {
  const [alg, n, salt, hash] = fingerprint.split(':');
  if (alg !== 'scrypt' || Number(n) !== N || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'hex');
  const actual = scryptSync(value, Buffer.from(salt, 'base64url'), expected.length, { N, r: 8, p: 1 });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * Reads the recorded facts from tyk.conf's JSON text. Throws a plain Error when it is not JSON.
 * TYK_GW_* overrides in the gateway's environment are not visible here; docs/FORMAT.md says so.
 */
export function tykConfFacts(file: string, text: string): TykConfFacts {
  const conf = JSON.parse(text) as Record<string, unknown>;
  const security = (conf.security ?? {}) as Record<string, unknown>;
  const secret = typeof conf.secret === 'string' ? conf.secret : '';
  const certSecret =
    typeof security.private_certificate_encoding_secret === 'string' ? security.private_certificate_encoding_secret : '';
  const hashKeys = conf.hash_keys;
  return {
    file,
    hash_keys: hashKeys === true || hashKeys === 'true',
    hash_key_function: String(conf.hash_key_function ?? '') || 'murmur32',
    secret_fingerprint: secret === '' ? null : fingerprintSecret(secret),
    certificate_secret_fingerprint: certSecret === '' ? null : fingerprintSecret(certSecret),
  };
}
