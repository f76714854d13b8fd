/**
 * age X25519 keys: Bech32 encoding (age1... recipients, AGE-SECRET-KEY-1... identities), parsing with
 * user-facing errors, and the X25519 primitives the header stanzas need, on node:crypto.
 *
 * Secrets never leave this module as strings except from generateIdentity(): parsed identities hold a
 * KeyObject, and no error message or `cause` built here contains identity text.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { bech32 } from '@scure/base';
import { TykdrError } from '../errors.js';

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';
// DER prefixes that wrap a raw 32-byte X25519 key (OID 1.3.101.110) as SPKI / PKCS#8.
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface AgeRecipient {
  /** Canonical (lowercase) age1... string. */
  readonly recipient: string;
  readonly publicKey: Buffer;
  readonly keyObject: KeyObject;
}

export interface AgeIdentity {
  /** The matching age1... recipient. */
  readonly recipient: string;
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function privateKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

function rawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
}

function encodeRecipient(publicKey: Uint8Array): string {
  return bech32.encode(RECIPIENT_HRP, bech32.toWords(publicKey), false);
}

/**
 * Decodes a Bech32 string to 32 bytes under the expected HRP, or returns why not. The reason never
 * contains the input: the library's own messages may quote it, so they are not passed on.
 */
function decodeKey(s: string, hrp: string, isPublic: boolean): { ok: true; bytes: Uint8Array } | { ok: false; reason: string } {
  if (s !== s.toLowerCase() && s !== s.toUpperCase()) return { ok: false, reason: 'mixes upper and lower case' };
  const lower = s.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1) return { ok: false, reason: 'has no Bech32 separator' };
  if (lower.slice(0, sep) !== hrp) {
    // The text before the last "1" of a mangled identity may hold secret characters: echo it only for recipients.
    const found = isPublic ? ` (found "${lower.slice(0, sep)}1")` : '';
    return { ok: false, reason: `does not have the "${isPublic ? hrp : hrp.toUpperCase()}1" Bech32 prefix${found}` };
  }
  let words: number[];
  try {
    words = bech32.decode(lower as `${string}1${string}`, false).words;
  } catch {
    return { ok: false, reason: 'has a bad Bech32 checksum or invalid characters' };
  }
  let bytes: Uint8Array;
  try {
    bytes = bech32.fromWords(words);
  } catch {
    return { ok: false, reason: 'has invalid Bech32 padding' };
  }
  if (bytes.length !== 32) return { ok: false, reason: `encodes ${bytes.length} bytes, not 32` };
  return { ok: true, bytes };
}

/** Parses an age1... X25519 recipient. Throws badInput naming the value (recipients are public). */
export function parseRecipient(s: string): AgeRecipient {
  const trimmed = s.trim();
  const decoded = decodeKey(trimmed, RECIPIENT_HRP, true);
  if (!decoded.ok) {
    const why = trimmed.startsWith('ssh-') ? 'SSH keys are not supported' : `it ${decoded.reason}`;
    throw new TykdrError('badInput', `recipient "${trimmed}" is not a valid age1... X25519 recipient: ${why}`, {
      fix: 'Use the "Public key: age1..." line printed by `age-keygen` or `tykdr key generate`.',
    });
  }
  const publicKey = Buffer.from(decoded.bytes);
  return { recipient: encodeRecipient(publicKey), publicKey, keyObject: publicKeyFromRaw(publicKey) };
}

/**
 * Parses an AGE-SECRET-KEY-1... identity. `label` says where it came from ("identity on line 3 of
 * key.txt"); the error message uses the label and never the value.
 */
export function parseIdentity(s: string, label = 'identity'): AgeIdentity {
  const decoded = decodeKey(s.trim(), IDENTITY_HRP, false);
  if (!decoded.ok) {
    throw new TykdrError('badInput', `${label} is not a valid AGE-SECRET-KEY-1 string: it ${decoded.reason}`, {
      fix: 'Use the AGE-SECRET-KEY-1... line written by `age-keygen` or `tykdr key generate`.',
    });
  }
  const privateKey = privateKeyFromRaw(decoded.bytes);
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { recipient: encodeRecipient(publicKey), publicKey, privateKey };
}

/**
 * Parses identity-file text as written by age-keygen: one AGE-SECRET-KEY-1... per line, `#` comments
 * and blank lines ignored, any number of keys (at least one). CRLF line ends are tolerated.
 */
export function parseIdentityFile(text: string, fileLabel: string): AgeIdentity[] {
  const identities: AgeIdentity[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    identities.push(parseIdentity(line, `identity on line ${i + 1} of ${fileLabel}`));
  }
  if (identities.length === 0) {
    throw new TykdrError('badInput', `${fileLabel} contains no AGE-SECRET-KEY-1 identity`, {
      fix: 'Point to a key file written by `age-keygen` or `tykdr key generate`.',
    });
  }
  return identities;
}

/** A fresh X25519 key pair, encoded exactly as age-keygen prints it. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const identity = bech32.encode(IDENTITY_HRP, bech32.toWords(rawPrivateKey(privateKey)), false).toUpperCase();
  return { identity, recipient: encodeRecipient(rawPublicKey(publicKey)) };
}

export function recipientFromIdentity(identity: string): string {
  return parseIdentity(identity).recipient;
}

/** Text of an identity file in age-keygen's layout (the caller writes it with mode 0600). */
export function formatIdentityFile(identity: string, created: Date = new Date()): string {
  const recipient = recipientFromIdentity(identity);
  const stamp = created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `# created: ${stamp}\n# public key: ${recipient}\n${identity.trim()}\n`;
}

/** "sha256:" + first 16 hex chars of SHA-256 over the canonical (lowercase) recipient string. */
export function recipientFingerprint(recipient: string): string {
  const canonical = parseRecipient(recipient).recipient;
  return `sha256:${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
}

/**
 * X25519(privateKey, peer) as raw bytes, or null when the result is the all-zero value (a low-order
 * peer point), which age requires to be rejected. OpenSSL refuses that case itself; both paths map to null.
 */
export function x25519(privateKey: KeyObject, peer: KeyObject): Buffer | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: peer });
  } catch {
    return null;
  }
  return shared.every((b) => b === 0) ? null : shared;
}
