import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { badInput } from '../errors.js';

/**
 * Ed25519 signing keys (node:crypto, no dependency).
 *
 * - The private key is a PKCS#8 PEM file ("-----BEGIN PRIVATE KEY-----"), the format `openssl genpkey
 *   -algorithm ed25519` writes; it lives only on the host that signs (signing.keyFile).
 * - A public key is written `tykdr-ed25519:<base64 of the 32 raw key bytes>`: one copy-pasteable word for
 *   signing.verifyKeys and --key. A PEM public key ("-----BEGIN PUBLIC KEY-----") is accepted too.
 *   The PEM of a tykdr-ed25519 key is "MCowBQYDK2VwAyEA" followed by the same base64 (docs/FORMAT.md).
 * - A signature is the raw 64-byte Ed25519 signature over the exact bytes of the signed file, stored as
 *   a detached `<file>.sig` (openssl pkeyutl -verify -rawin checks it).
 */
export const PUBLIC_KEY_PREFIX = 'tykdr-ed25519:';
const RAW_PUBLIC_KEY = /^[A-Za-z0-9+/]{43}=$/;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A private key that signs; never printed (KeyObject shows no key material). */
export interface Signer {
  /** The matching public key, tykdr-ed25519:... */
  publicKey: string;
  fingerprint: string;
  sign(data: Buffer): Buffer;
}

/** A trusted public key. */
export interface VerifyKey {
  publicKey: string;
  fingerprint: string;
  key: KeyObject;
}

export function formatPublicKey(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return `${PUBLIC_KEY_PREFIX}${der.subarray(SPKI_PREFIX.length).toString('base64')}`;
}

/** "sha256:" and the first 16 hex digits of SHA-256 over the 32 raw public key bytes. */
export function publicKeyFingerprint(publicKey: string): string {
  const raw = Buffer.from(publicKey.slice(PUBLIC_KEY_PREFIX.length), 'base64');
  return `sha256:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
}

/**
 * Encodings of the Ed25519 points of small order (sign bit ignored), as libsodium blocks them. OpenSSL accepts
 * such a public key, and then a signature anyone can make verifies for every (or every fourth) message:
 * one in signing.verifyKeys would let any forger through. They never come out of a key generator.
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => Buffer.from(h, 'hex'));

/** True for the raw bytes of a small-order point (a key that verifies forged signatures). */
export function isWeakPublicKey(raw: Buffer): boolean {
  if (raw.length !== 32) return false;
  const masked = Buffer.from(raw);
  masked[31]! &= 0x7f;
  return SMALL_ORDER.some((b) => b.equals(masked));
}

/** True when `text` is a well-formed tykdr-ed25519:... public key (config validation uses this). */
export function isPublicKeyText(text: string): boolean {
  if (!text.startsWith(PUBLIC_KEY_PREFIX)) return false;
  const b64 = text.slice(PUBLIC_KEY_PREFIX.length);
  return RAW_PUBLIC_KEY.test(b64) && Buffer.from(b64, 'base64').length === 32;
}

/** True for a well-formed tykdr-ed25519:... key that is a small-order point (see isWeakPublicKey). */
export function isWeakPublicKeyText(text: string): boolean {
  return isPublicKeyText(text) && isWeakPublicKey(Buffer.from(text.slice(PUBLIC_KEY_PREFIX.length), 'base64'));
}

/**
 * A public key from its tykdr-ed25519:... form or a PEM. `where` names the value's origin for the error
 * (a public key is not a secret, so the message may show it).
 */
export function parsePublicKey(text: string, where: string): VerifyKey {
  const t = text.trim();
  let key: KeyObject;
  try {
    if (isPublicKeyText(t)) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(t.slice(PUBLIC_KEY_PREFIX.length), 'base64')]), format: 'der', type: 'spki' });
    } else if (t.startsWith('-----BEGIN PUBLIC KEY-----')) {
      key = createPublicKey(t);
    } else {
      throw new Error('not a key');
    }
  } catch (err) {
    const shown = t.length > 80 ? `${t.slice(0, 77)}...` : t;
    throw badInput(
      `${where}: "${shown}" is not an Ed25519 public key`,
      'use the tykdr-ed25519:... line that `tykdr key generate --signing` printed (or a PEM public key)',
      err,
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw badInput(`${where}: the public key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`, 'create one with `tykdr key generate --signing`');
  }
  const publicKey = formatPublicKey(key);
  if (isWeakPublicKeyText(publicKey)) {
    throw badInput(`${where}: ${publicKey} is a small-order Ed25519 point: signatures anyone can forge verify with it`, 'use the public key of a real signing key (`tykdr key generate --signing`)');
  }
  return { publicKey, fingerprint: publicKeyFingerprint(publicKey), key };
}

/** A --key value: a public key as text, or the path of a file holding one. */
export async function readPublicKeyArg(value: string, what: string): Promise<VerifyKey> {
  const t = value.trim();
  if (t.startsWith(PUBLIC_KEY_PREFIX) || t.startsWith('-----BEGIN')) return parsePublicKey(t, what);
  let text: string;
  try {
    text = await readFile(t, 'utf8');
  } catch (err) {
    throw badInput(
      `${what} "${value}" is neither a tykdr-ed25519:... public key nor a readable file (${(err as NodeJS.ErrnoException).code ?? err})`,
      'pass the public key that `tykdr key generate --signing` printed, or a file holding it',
      err,
    );
  }
  return parsePublicKey(text, `${what} ${path.resolve(t)}`);
}

/** Creates a new Ed25519 private key file (PKCS#8 PEM, mode 0600, never overwriting); returns its public key. */
export async function writeSigningKeyFile(file: string): Promise<{ publicKey: string; fingerprint: string; file: string; publicKeyPem: string }> {
  const abs = path.resolve(file);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  let fh;
  try {
    fh = await open(abs, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(
      `cannot create signing key file ${abs} (${code ?? err})`,
      code === 'EEXIST' ? 'a key file is never overwritten: choose another --output or move the old file' : 'check the folder exists and is writable',
      err,
    );
  }
  try {
    await fh.writeFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
  const text = formatPublicKey(publicKey);
  return { publicKey: text, fingerprint: publicKeyFingerprint(text), file: abs, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Loads signing.keyFile. Errors name the file, never its contents. */
export async function loadSigner(file: string, where = 'signing.keyFile'): Promise<Signer> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw badInput(
      `${where}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
      'check the path and its permissions, or create a key with `tykdr key generate --signing --output FILE`',
      err,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw badInput(`${where}: ${file} is not a PEM private key`, 'create one with `tykdr key generate --signing --output FILE`', err);
  } finally {
    pem.fill(0);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw badInput(`${where}: ${file} holds a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`, 'create one with `tykdr key generate --signing --output FILE`');
  }
  const publicKey = formatPublicKey(createPublicKey(key));
  return { publicKey, fingerprint: publicKeyFingerprint(publicKey), sign: (data) => sign(null, data, key) };
}

/** The key among `keys` whose signature `sig` over `data` is valid, or null. */
export function findSigningKey(data: Buffer, sig: Buffer, keys: readonly VerifyKey[]): VerifyKey | null {
  if (sig.length !== 64) return null;
  return keys.find((k) => verify(null, data, k.key, sig)) ?? null;
}

/** signing.verifyKeys, parsed (the config schema already checked their form). */
export function verifyKeysOf(signing: { verifyKeys: string[] }): VerifyKey[] {
  return signing.verifyKeys.map((k, i) => parsePublicKey(k, `signing.verifyKeys[${i}]`));
}
