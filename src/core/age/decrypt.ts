/**
 * age v1 decryption as a Node Transform: age file in (binary, not armored), plaintext out. The header
 * is parsed incrementally, so it may arrive in any chunking. Every failure is a stream error: a
 * TykdrError('integrityError') for bad or tampered data, 'badInput' for options that cannot work.
 * Plaintext is released only chunk by chunk after each chunk authenticates.
 */
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TykdrError } from '../errors.js';
import {
  CHUNK_SIZE,
  NONCE_SIZE,
  TAG_SIZE,
  VERSION_LINE,
  X25519_INFO,
  ZERO_NONCE,
  aeadOpen,
  b64,
  chunkNonce,
  headerMac,
  hkdf,
  payloadKey,
  scryptWrapKey,
} from './encrypt.js';
import { parseIdentity, publicKeyFromRaw, x25519, type AgeIdentity } from './keys.js';

const ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
const MAX_HEADER_BYTES = 1024 * 1024;
const VERSION_PREFIX = 'age-encryption.org/';
const ARMOR_START = '-----BEGIN';

export interface DecryptOptions {
  /** AGE-SECRET-KEY-1... strings or identities from parseIdentity/parseIdentityFile. */
  identities?: Array<string | AgeIdentity>;
  passphrase?: string;
  /** Refuse scrypt stanzas above 2^this work (a hostile file could demand unbounded memory). Default 22. */
  maxScryptWorkFactor?: number;
}

interface Stanza {
  args: string[];
  body: Buffer;
}

interface Header {
  stanzas: Stanza[];
  mac: Buffer;
  /** Header bytes up to and including the "---" of the MAC line: the HMAC input. */
  macInput: Buffer;
}

const integrity = (msg: string) => new TykdrError('integrityError', msg);
const malformed = (why: string) => integrity(`malformed age header: ${why}`);

/** Canonical unpadded standard base64, or null. */
function unb64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*$/.test(s) || s.length % 4 === 1) return null;
  const out = Buffer.from(s, 'base64');
  return b64(out) === s ? out : null;
}

/** Accumulates header bytes line by line; feed() returns the bytes after the header once it is complete. */
class HeaderReader {
  #buf = Buffer.allocUnsafe(512);
  #len = 0;
  #lineStart = 0;
  #state: 'version' | 'stanza' | 'body' = 'version';
  #stanzas: Stanza[] = [];
  #bodyText = '';
  header: Header | null = null;

  get started(): boolean {
    return this.#len > 0;
  }

  feed(chunk: Buffer): Buffer | null {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl + 1;
      this.#append(chunk.subarray(pos, end));
      pos = end;
      if (nl === -1) break;
      const line = this.#buf.toString('latin1', this.#lineStart, this.#len - 1);
      this.#line(line);
      this.#lineStart = this.#len;
      if (this.header) return chunk.subarray(pos);
    }
    if (this.#state === 'version') this.#checkVersionPrefix(this.#buf.toString('latin1', 0, Math.min(this.#len, 32)));
    return null;
  }

  #append(part: Buffer): void {
    if (this.#len + part.length > MAX_HEADER_BYTES) throw malformed(`larger than ${MAX_HEADER_BYTES} bytes`);
    if (this.#len + part.length > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + part.length));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    part.copy(this.#buf, this.#len);
    this.#len += part.length;
  }

  // Fails fast on input that is plainly not an age file, before waiting for a newline.
  #checkVersionPrefix(partial: string): void {
    const n = Math.min(partial.length, VERSION_PREFIX.length);
    if (partial.slice(0, n) === VERSION_PREFIX.slice(0, n)) return;
    if (partial.startsWith(ARMOR_START)) {
      throw integrity('this is an ASCII-armored age file; only binary age files are supported');
    }
    if (ARMOR_START.startsWith(partial)) return; // may still turn out to be armor
    throw integrity('not an age file: it does not start with "age-encryption.org/v1"');
  }

  #line(line: string): void {
    if (this.#state === 'version') {
      this.#checkVersionPrefix(line);
      if (!line.startsWith(VERSION_PREFIX)) throw integrity('not an age file: it does not start with "age-encryption.org/v1"');
      if (line !== VERSION_LINE) throw integrity(`unsupported age format version "${line.slice(0, 64)}" (only v1 is supported)`);
      this.#state = 'stanza';
    } else if (this.#state === 'body') {
      if (!/^[A-Za-z0-9+/]{0,64}$/.test(line)) throw malformed('invalid stanza body line');
      this.#bodyText += line;
      if (line.length < 64) {
        const body = unb64(this.#bodyText);
        if (body === null) throw malformed('stanza body is not canonical base64');
        (this.#stanzas[this.#stanzas.length - 1] as Stanza).body = body;
        this.#bodyText = '';
        this.#state = 'stanza';
      }
    } else if (line.startsWith('-> ')) {
      const args = line.slice(3).split(' ');
      if (!args.every((a) => /^[\x21-\x7e]+$/.test(a))) throw malformed('invalid stanza arguments');
      this.#stanzas.push({ args, body: Buffer.alloc(0) });
      this.#state = 'body';
    } else if (line.startsWith('---')) {
      const mac = line.startsWith('--- ') && line.length === 47 ? unb64(line.slice(4)) : null;
      if (mac === null) throw malformed('invalid MAC line');
      if (this.#stanzas.length === 0) throw malformed('no recipient stanzas');
      this.header = { stanzas: this.#stanzas, mac, macInput: Buffer.from(this.#buf.subarray(0, this.#lineStart + 3)) };
    } else {
      throw malformed('unexpected line (expected a "-> " stanza or the "---" MAC line)');
    }
  }
}

function unwrapX25519(header: Header, identities: AgeIdentity[]): Buffer {
  const stanzas = header.stanzas.filter((s) => s.args[0] === 'X25519');
  for (const s of stanzas) {
    const share = s.args.length === 2 ? unb64(s.args[1] as string) : null;
    if (share === null || share.length !== 32 || s.body.length !== 32) throw malformed('invalid X25519 stanza');
    const sharePoint = publicKeyFromRaw(share);
    for (const id of identities) {
      const shared = x25519(id.privateKey, sharePoint);
      if (shared === null) throw integrity('X25519 stanza has a low-order ephemeral share (corrupted or malicious file)');
      const wrapKey = hkdf(shared, Buffer.concat([share, id.publicKey]), X25519_INFO);
      const fileKey = aeadOpen(wrapKey, ZERO_NONCE, s.body);
      if (fileKey !== null) return fileKey;
    }
  }
  const n = header.stanzas.length;
  const detail = stanzas.length === n ? '' : `, ${stanzas.length} of them X25519`;
  throw new TykdrError('integrityError', `no identity matches any recipient of this file (${n} recipient stanza${n === 1 ? '' : 's'}${detail})`, {
    fix: 'Decrypt with the identity file whose public key was a recipient when the snapshot was written.',
  });
}

async function unwrapScrypt(stanza: Stanza, passphrase: string, maxLogN: number): Promise<Buffer> {
  const [, saltText, logText] = stanza.args;
  const salt = stanza.args.length === 3 ? unb64(saltText as string) : null;
  if (salt === null || salt.length !== 16 || !/^[1-9][0-9]*$/.test(logText as string) || stanza.body.length !== 32) {
    throw malformed('invalid scrypt stanza');
  }
  const logN = Number(logText);
  if (logN > maxLogN) {
    throw integrity(`scrypt work factor 2^${logN} exceeds the limit 2^${maxLogN} (raise maxScryptWorkFactor if the file is trusted)`);
  }
  const fileKey = aeadOpen(await scryptWrapKey(passphrase, salt, logN), ZERO_NONCE, stanza.body);
  if (fileKey === null) throw integrity('passphrase does not decrypt this file');
  return fileKey;
}

interface UnwrapOptions {
  identities: AgeIdentity[];
  passphrase: string | undefined;
  maxLogN: number;
}

/** Recovers the file key from the stanzas and checks the header MAC with it. */
async function unwrapFileKey(header: Header, opts: UnwrapOptions): Promise<Buffer> {
  const scryptStanza = header.stanzas.find((s) => s.args[0] === 'scrypt');
  let fileKey: Buffer;
  if (scryptStanza) {
    if (header.stanzas.length > 1) throw malformed('an scrypt stanza must be the only stanza');
    if (opts.passphrase === undefined) {
      throw new TykdrError('badInput', 'this age file is passphrase-encrypted, but no passphrase was given');
    }
    fileKey = await unwrapScrypt(scryptStanza, opts.passphrase, opts.maxLogN);
  } else {
    if (opts.identities.length === 0) {
      throw new TykdrError('badInput', 'this age file is encrypted to recipients, not a passphrase, but no identity was given');
    }
    fileKey = unwrapX25519(header, opts.identities);
  }
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) throw integrity('header MAC mismatch');
  return fileKey;
}

/** Runs fn, then calls cb with its error if it threw, or with nothing. */
function settle(cb: TransformCallback, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    cb(err as Error);
    return;
  }
  cb();
}

class AgeDecryptStream extends Transform {
  readonly #opts: UnwrapOptions;
  readonly #header = new HeaderReader();
  #fileKey: Buffer | null = null;
  #key: KeyObject | null = null;
  readonly #nonce = Buffer.allocUnsafe(NONCE_SIZE);
  #nonceFill = 0;
  readonly #buf = Buffer.allocUnsafe(ENC_CHUNK_SIZE);
  #fill = 0;
  #counter = 0;
  #done = false;

  constructor(opts: UnwrapOptions) {
    super({ writableHighWaterMark: ENC_CHUNK_SIZE, readableHighWaterMark: CHUNK_SIZE });
    this.#opts = opts;
  }

  #open(sealed: Buffer, last: boolean): Buffer | null {
    return aeadOpen(this.#key as KeyObject, chunkNonce(this.#counter, last), sealed);
  }

  #chunkFailed(): TykdrError {
    return integrity(`payload chunk ${this.#counter} failed authentication (corrupted or truncated)`);
  }

  // A full-size chunk with more bytes behind it is normally not the last; if it only opens as the
  // last one, whatever follows is trailing data.
  #openFull(sealed: Buffer): void {
    let out = this.#open(sealed, false);
    if (out === null) {
      out = this.#open(sealed, true);
      if (out === null) throw this.#chunkFailed();
      this.#done = true;
    }
    this.#counter++;
    this.push(out);
  }

  #payload(chunk: Buffer): void {
    const len = chunk.length;
    let off = 0;
    if (this.#nonceFill < NONCE_SIZE) {
      const n = Math.min(NONCE_SIZE - this.#nonceFill, len);
      chunk.copy(this.#nonce, this.#nonceFill, 0, n);
      this.#nonceFill += n;
      off = n;
      if (this.#nonceFill < NONCE_SIZE) return;
      this.#key = payloadKey(this.#fileKey as Buffer, this.#nonce);
    }
    while (off < len) {
      if (this.#done) throw integrity('trailing data after final chunk');
      if (this.#fill === ENC_CHUNK_SIZE) {
        this.#openFull(this.#buf);
        this.#fill = 0;
        continue;
      }
      if (this.#fill === 0 && len - off > ENC_CHUNK_SIZE) {
        this.#openFull(chunk.subarray(off, off + ENC_CHUNK_SIZE));
        off += ENC_CHUNK_SIZE;
        continue;
      }
      const n = Math.min(ENC_CHUNK_SIZE - this.#fill, len - off);
      chunk.copy(this.#buf, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#fileKey !== null) return settle(cb, () => this.#payload(chunk));
    let rest: Buffer | null;
    try {
      rest = this.#header.feed(chunk);
    } catch (err) {
      return cb(err as Error);
    }
    if (rest === null) return cb();
    const payload = rest;
    unwrapFileKey(this.#header.header as Header, this.#opts).then((fileKey) => {
      this.#fileKey = fileKey;
      settle(cb, () => this.#payload(payload));
    }, cb);
  }

  override _flush(cb: TransformCallback): void {
    settle(cb, () => this.#finish());
  }

  #finish(): void {
    if (this.#fileKey === null) {
      throw integrity(this.#header.started ? 'file ends inside the age header (truncated)' : 'input is empty: not an age file');
    }
    if (this.#done) return;
    const truncated = integrity('file ends before the final chunk (truncated)');
    if (this.#key === null || this.#fill < TAG_SIZE) throw truncated;
    const sealed = this.#buf.subarray(0, this.#fill);
    const out = this.#open(sealed, true);
    if (out === null) {
      if (this.#fill === ENC_CHUNK_SIZE && this.#open(sealed, false) !== null) throw truncated;
      throw this.#chunkFailed();
    }
    if (out.length === 0 && this.#counter > 0) {
      throw integrity(`payload chunk ${this.#counter} is an empty final chunk, which age forbids after data`);
    }
    this.#done = true;
    this.push(out);
  }
}

/**
 * A Transform that decrypts an age file. Throws badInput synchronously on invalid identities (the
 * message never contains the secret) or when neither identities nor a passphrase are given.
 */
export function createDecryptStream(opts: DecryptOptions): Transform {
  const identities = (opts.identities ?? []).map((id, i) =>
    typeof id === 'string' ? parseIdentity(id, `identity #${i + 1}`) : id,
  );
  if (identities.length === 0 && opts.passphrase === undefined) {
    throw new TykdrError('badInput', 'age decryption needs at least one identity or a passphrase; neither was given');
  }
  const maxLogN = opts.maxScryptWorkFactor ?? 22;
  if (!Number.isInteger(maxLogN) || maxLogN < 1 || maxLogN > 30) {
    throw new TykdrError('badInput', `maxScryptWorkFactor ${maxLogN} is not an integer from 1 to 30`);
  }
  return new AgeDecryptStream({ identities, passphrase: opts.passphrase, maxLogN });
}
