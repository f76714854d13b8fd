/**
 * age v1 encryption (https://age-encryption.org/v1) as a Node Transform: plaintext in, binary (not
 * armored) age file out. Also holds the primitives decrypt.ts shares; index.ts exports only the API.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scrypt,
  type KeyObject,
} from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TykdrError } from '../errors.js';
import { parseRecipient, rawPublicKey, x25519, type AgeRecipient } from './keys.js';

export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const NONCE_SIZE = 16;
export const VERSION_LINE = 'age-encryption.org/v1';
export const X25519_INFO = 'age-encryption.org/v1/X25519';
export const SCRYPT_SALT_LABEL = 'age-encryption.org/v1/scrypt';
const DEFAULT_WORK_FACTOR = 18;
const MAX_ENCRYPT_WORK_FACTOR = 20;
/** Stanza bodies are sealed once per fresh key, so a fixed all-zero nonce is safe (spec). */
export const ZERO_NONCE = Buffer.alloc(12);

export interface EncryptOptions {
  /** age1... X25519 recipients; any one identity can decrypt. Exclusive with `passphrase`. */
  recipients?: string[];
  /** Encrypt with scrypt instead; the scrypt stanza must be the only stanza (spec). */
  passphrase?: string;
  /** log2 of the scrypt work factor, 1..20; default 18 (as the age CLI). */
  scryptWorkFactor?: number;
}

export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

/** Standard base64 without padding, as every base64 string in an age header. */
export function b64(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('base64').replace(/=+$/, '');
}

/** ChaCha20-Poly1305 seal; returns ciphertext || tag. */
export function aeadSeal(key: Uint8Array | KeyObject, nonce: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  const out = c.update(plaintext);
  c.final();
  return Buffer.concat([out, c.getAuthTag()]);
}

/** ChaCha20-Poly1305 open of ciphertext || tag; null when authentication fails. */
export function aeadOpen(key: Uint8Array | KeyObject, nonce: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < TAG_SIZE) return null;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const out = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}

/** Nonce of payload chunk `counter`: 11-byte big-endian counter, then 0x01 on the final chunk. */
export function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6); // 2^48 chunks of 64 KiB is far beyond any file; the top bytes stay 0
  n[11] = last ? 1 : 0;
  return n;
}

export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): KeyObject {
  return createSecretKey(hkdf(fileKey, nonce, 'payload'));
}

/** HMAC over the header bytes up to and including the "---" of the MAC line. */
export function headerMac(fileKey: Uint8Array, headerToDashes: Uint8Array): Buffer {
  return createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(headerToDashes).digest();
}

/** scrypt(N = 2^logN, r = 8, p = 1) wrap key, run on the libuv pool so the event loop stays free. */
export function scryptWrapKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  const maxmem = 128 * 8 * (N + 3) + 16 * 1024 * 1024; // OpenSSL needs 128*r*(N+2) + 128*r*p bytes
  const s = Buffer.concat([Buffer.from(SCRYPT_SALT_LABEL), salt]);
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase, 'utf8'), s, 32, { N, r: 8, p: 1, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** One header stanza line set: "-> args..." then the body wrapped at 64 columns (last line < 64). */
function stanzaText(args: string[], body: Uint8Array): string {
  const enc = b64(body);
  let text = `-> ${args.join(' ')}\n`;
  for (let i = 0; ; i += 64) {
    const line = enc.slice(i, i + 64);
    text += `${line}\n`;
    if (line.length < 64) return text;
  }
}

function x25519Stanza(fileKey: Buffer, r: AgeRecipient): string {
  const eph = generateKeyPairSync('x25519');
  const share = rawPublicKey(eph.publicKey);
  const shared = x25519(eph.privateKey, r.keyObject);
  if (shared === null) {
    throw new TykdrError('badInput', `recipient "${r.recipient}" is a low-order X25519 point and cannot be encrypted to`);
  }
  const wrapKey = hkdf(shared, Buffer.concat([share, r.publicKey]), X25519_INFO);
  return stanzaText(['X25519', b64(share)], aeadSeal(wrapKey, ZERO_NONCE, fileKey));
}

async function scryptStanza(fileKey: Buffer, passphrase: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const wrapKey = await scryptWrapKey(passphrase, salt, logN);
  return stanzaText(['scrypt', b64(salt), String(logN)], aeadSeal(wrapKey, ZERO_NONCE, fileKey));
}

function finishHeader(fileKey: Buffer, stanzas: string[]): Buffer {
  const toDashes = Buffer.from(`${VERSION_LINE}\n${stanzas.join('')}---`, 'latin1');
  return Buffer.concat([toDashes, Buffer.from(` ${b64(headerMac(fileKey, toDashes))}\n`, 'latin1')]);
}

type HeaderPlan = { kind: 'x25519'; recipients: AgeRecipient[] } | { kind: 'scrypt'; passphrase: string; logN: number };

/** Validates options synchronously so misuse throws at the call site, not later as a stream error. */
function planHeader(opts: EncryptOptions): HeaderPlan {
  const recipients = opts.recipients ?? [];
  const hasPassphrase = opts.passphrase !== undefined;
  if (recipients.length > 0 && hasPassphrase) {
    throw new TykdrError('badInput', 'age encryption takes either recipients or a passphrase, not both (an scrypt stanza must be alone)');
  }
  if (recipients.length === 0 && !hasPassphrase) {
    throw new TykdrError('badInput', 'age encryption needs either at least one recipient or a passphrase; neither was given');
  }
  if (hasPassphrase) {
    if (opts.passphrase === '') throw new TykdrError('badInput', 'the age passphrase is empty');
    const logN = opts.scryptWorkFactor ?? DEFAULT_WORK_FACTOR;
    if (!Number.isInteger(logN) || logN < 1 || logN > MAX_ENCRYPT_WORK_FACTOR) {
      throw new TykdrError('badInput', `scrypt work factor ${logN} is not an integer from 1 to ${MAX_ENCRYPT_WORK_FACTOR} (log2)`);
    }
    return { kind: 'scrypt', passphrase: opts.passphrase as string, logN };
  }
  return { kind: 'x25519', recipients: recipients.map(parseRecipient) };
}

class AgeEncryptStream extends Transform {
  readonly #header: Promise<{ header: Buffer; key: KeyObject }>;
  #key: KeyObject | null = null;
  readonly #buf = Buffer.allocUnsafe(CHUNK_SIZE);
  #fill = 0;
  #counter = 0;

  constructor(plan: HeaderPlan) {
    super({ writableHighWaterMark: CHUNK_SIZE, readableHighWaterMark: CHUNK_SIZE + TAG_SIZE });
    const fileKey = randomBytes(16);
    this.#header = (async () => {
      const stanzas =
        plan.kind === 'x25519'
          ? plan.recipients.map((r) => x25519Stanza(fileKey, r))
          : [await scryptStanza(fileKey, plan.passphrase, plan.logN)];
      const nonce = randomBytes(NONCE_SIZE);
      return { header: Buffer.concat([finishHeader(fileKey, stanzas), nonce]), key: payloadKey(fileKey, nonce) };
    })();
    this.#header.catch(() => {}); // surfaced through the first transform/flush callback instead
  }

  #start(then: () => void, cb: TransformCallback): void {
    this.#header.then(
      ({ header, key }) => {
        this.#key = key;
        this.push(header);
        try {
          then();
        } catch (err) {
          cb(err as Error);
          return;
        }
        cb();
      },
      (err: Error) => cb(err),
    );
  }

  #seal(plaintext: Buffer, last: boolean): void {
    const c = createCipheriv('chacha20-poly1305', this.#key as KeyObject, chunkNonce(this.#counter++, last), {
      authTagLength: TAG_SIZE,
    });
    // Two pushes instead of a concat: saves copying 64 KiB per chunk.
    this.push(c.update(plaintext));
    c.final();
    this.push(c.getAuthTag());
  }

  // A full buffered chunk is sealed only once more input proves it is not the last one.
  #consume(chunk: Buffer): void {
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      if (this.#fill === CHUNK_SIZE) {
        this.#seal(this.#buf, false);
        this.#fill = 0;
      }
      if (this.#fill === 0 && len - off > CHUNK_SIZE) {
        this.#seal(chunk.subarray(off, off + CHUNK_SIZE), false);
        off += CHUNK_SIZE;
        continue;
      }
      const n = Math.min(CHUNK_SIZE - this.#fill, len - off);
      chunk.copy(this.#buf, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#key === null) {
      this.#start(() => this.#consume(chunk), cb);
      return;
    }
    this.#consume(chunk);
    cb();
  }

  // Empty input still yields one empty final chunk; a multiple of 64 KiB ends with a full final chunk.
  override _flush(cb: TransformCallback): void {
    const finish = () => this.#seal(this.#buf.subarray(0, this.#fill), true);
    if (this.#key === null) {
      this.#start(finish, cb);
      return;
    }
    finish();
    cb();
  }
}

/**
 * A Transform that age-encrypts its input. Throws badInput synchronously on bad options (invalid
 * recipient, both or neither of recipients and passphrase). Memory: at most one 64 KiB plaintext chunk.
 */
export function createEncryptStream(opts: EncryptOptions): Transform {
  return new AgeEncryptStream(planHeader(opts));
}
