import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bech32 } from '@scure/base';
import { beforeAll, describe, it, expect } from 'vitest';
import { TykdrError } from '../../src/core/errors.js';
import {
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  recipientFingerprint,
  recipientFromIdentity,
} from '../../src/core/age/index.js';
import { aeadSeal, b64, chunkNonce, headerMac, hkdf, scryptWrapKey } from '../../src/core/age/encrypt.js';

const KiB64 = 65536;

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  if (data.length === 0) yield data;
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function run(t: Transform, data: Buffer, chunkSize = 1 << 20): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) });
  await pipeline(Readable.from(chunked(data, chunkSize)), t, sink);
  return Buffer.concat(out);
}

const encrypt = (recipients: string[], data: Buffer, chunkSize?: number) =>
  run(createEncryptStream({ recipients }), data, chunkSize);
const decrypt = (identities: string[], data: Buffer, chunkSize?: number) =>
  run(createDecryptStream({ identities }), data, chunkSize);

async function failure(p: Promise<unknown>, kind: string, message: RegExp): Promise<TykdrError> {
  const err = await p.then(
    () => expect.unreachable('expected a failure'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TykdrError);
  expect((err as TykdrError).kind).toBe(kind);
  expect((err as TykdrError).message).toMatch(message);
  return err as TykdrError;
}

function thrown(fn: () => unknown): TykdrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    return err as TykdrError;
  }
  return expect.unreachable('expected a throw');
}

const headerLength = (file: Buffer) => file.indexOf('\n', file.indexOf('\n---') + 1) + 1;
// Public test key of the C2SP CCTV age testkit.
const TESTKIT_IDENTITY = 'AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0';

const ids = [generateIdentity(), generateIdentity(), generateIdentity()];

describe('age keys', () => {
  it('generates age-keygen-shaped keys whose recipient derives from the identity', () => {
    const { identity, recipient } = ids[0]!;
    expect(identity).toMatch(/^AGE-SECRET-KEY-1[02-9ACDEFGHJKLMNPQRSTUVWXYZ]{58}$/);
    expect(recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(recipientFromIdentity(identity)).toBe(recipient);
  });

  it('matches the known answers from the age spec and the CCTV testkit', () => {
    expect(recipientFromIdentity('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX')).toBe(
      'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj',
    );
    expect(recipientFromIdentity(TESTKIT_IDENTITY)).toBe('age1xmwwc06ly3ee5rytxm9mflaz2u56jjj36s0mypdrwsvlul66mv4q47ryef');
  });

  it('rejects invalid recipients with badInput naming the value', () => {
    const r = ids[0]!.recipient;
    const short = bech32.encode('age', bech32.toWords(new Uint8Array(31)), false);
    const wrongHrp = bech32.encode('agx', bech32.toWords(new Uint8Array(32)), false);
    const badChecksum = r.slice(0, -1) + (r.endsWith('q') ? 'p' : 'q');
    for (const bad of [short, wrongHrp, badChecksum, 'hello', ids[0]!.identity.slice(0, 10), `${r.slice(0, 10)}X${r.slice(11)}`]) {
      const err = thrown(() => parseRecipient(bad));
      expect(err.kind).toBe('badInput');
      expect(err.message).toContain(bad);
    }
    expect(thrown(() => createEncryptStream({ recipients: [r, short] })).message).toContain(short);
  });

  it('rejects invalid identities without ever including the secret', () => {
    const id = ids[0]!.identity;
    const badChecksum = id.slice(0, -1) + (id.endsWith('Q') ? 'P' : 'Q');
    const wrongHrp = bech32.encode('age-secret-kex-', bech32.toWords(new Uint8Array(32).fill(7)), false).toUpperCase();
    const long = bech32.encode('age-secret-key-', bech32.toWords(new Uint8Array(33).fill(7)), false).toUpperCase();
    for (const bad of [badChecksum, wrongHrp, long, id.toLowerCase().slice(0, 40) + id.slice(40)]) {
      const err = thrown(() => parseIdentity(bad));
      expect(err.kind).toBe('badInput');
      expect(err.message).toMatch(/not a valid AGE-SECRET-KEY-1 string/);
      for (const s of [bad.slice(16, 40), bad.slice(40)]) {
        expect(err.message.toUpperCase()).not.toContain(s.toUpperCase());
        expect(String(err.cause ?? '')).not.toContain(s);
      }
    }
    const file = `# created: now\n\n${ids[1]!.identity}\n${badChecksum}\n`;
    const err = thrown(() => parseIdentityFile(file, 'keys.txt'));
    expect(err.message).toBe(`identity on line 4 of keys.txt is not a valid AGE-SECRET-KEY-1 string: it has a bad Bech32 checksum or invalid characters`);
    expect(thrown(() => createDecryptStream({ identities: [badChecksum] })).message).not.toContain(badChecksum.slice(16));
  });

  it('parses age-keygen identity files with comments, blank lines, CRLF and several keys', () => {
    const text = `# created: 2024-01-01T00:00:00Z\r\n# public key: ${ids[0]!.recipient}\r\n${ids[0]!.identity}\r\n\n  # another\n${ids[1]!.identity}\n`;
    expect(parseIdentityFile(text, 'k').map((i) => i.recipient)).toEqual([ids[0]!.recipient, ids[1]!.recipient]);
    expect(thrown(() => parseIdentityFile('# nothing here\n', 'empty.txt')).message).toMatch(/empty\.txt contains no AGE-SECRET-KEY-1/);
  });

  it('fingerprints recipients stably', () => {
    const r = ids[0]!.recipient;
    const expected = `sha256:${createHash('sha256').update(r).digest('hex').slice(0, 16)}`;
    expect(recipientFingerprint(r)).toBe(expected);
    expect(recipientFingerprint(r.toUpperCase())).toBe(expected);
  });
});

describe('age round trips', () => {
  const sizes = [0, 1, KiB64 - 1, KiB64, KiB64 + 1, 3 * KiB64, 1_000_003];
  for (const n of [1, 3]) {
    it.each(sizes)(`%i bytes to ${n} recipient(s)`, async (size) => {
      const data = randomBytes(size);
      const file = await encrypt(ids.slice(0, n).map((i) => i.recipient), data);
      const chunks = Math.max(1, Math.ceil(size / KiB64));
      expect(file.length).toBe(headerLength(file) + 16 + size + 16 * chunks);
      for (const id of ids.slice(0, n)) expect((await decrypt([id.identity], file)).equals(data)).toBe(true);
    });
  }

  it('round-trips with a passphrase', async () => {
    const data = randomBytes(100_000);
    const file = await run(createEncryptStream({ passphrase: 'pässword', scryptWorkFactor: 10 }), data);
    expect(file.toString('latin1', 0, 80)).toMatch(/^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n/);
    expect((await run(createDecryptStream({ passphrase: 'pässword' }), file)).equals(data)).toBe(true);
  });

  it('works with input delivered 1 byte and 7 bytes at a time', async () => {
    const small = randomBytes(1000);
    const r = [ids[0]!.recipient];
    const i = [ids[0]!.identity];
    expect((await decrypt(i, await encrypt(r, small, 1), 1)).equals(small)).toBe(true);
    const big = randomBytes(2 * KiB64 + 5);
    expect((await decrypt(i, await encrypt(r, big, 7), 7)).equals(big)).toBe(true);
    const exact = randomBytes(2 * KiB64);
    expect((await decrypt(i, await encrypt(r, exact, 7), 65552)).equals(exact)).toBe(true);
  });

  it('refuses bad option combinations synchronously', () => {
    const r = ids[0]!.recipient;
    expect(thrown(() => createEncryptStream({ recipients: [r], passphrase: 'x' })).message).toMatch(/either recipients or a passphrase, not both/);
    expect(thrown(() => createEncryptStream({})).message).toMatch(/neither was given/);
    expect(thrown(() => createEncryptStream({ recipients: [] })).kind).toBe('badInput');
    expect(thrown(() => createEncryptStream({ passphrase: '' })).message).toMatch(/empty/);
    expect(thrown(() => createEncryptStream({ passphrase: 'x', scryptWorkFactor: 21 })).message).toMatch(/work factor 21/);
    expect(thrown(() => createDecryptStream({})).kind).toBe('badInput');
  });
});

describe('age failures', () => {
  const data = randomBytes(3 * KiB64 + 100);
  let file: Buffer;
  let hlen: number;
  beforeAll(async () => {
    file = await encrypt([ids[0]!.recipient, ids[1]!.recipient], data);
    hlen = headerLength(file);
  });
  const me = [ids[0]!.identity];

  it('fails with the wrong identity or passphrase', async () => {
    await failure(decrypt([ids[2]!.identity], file), 'integrityError', /^no identity matches any recipient of this file \(2 recipient stanzas\)$/);
    const pfile = await run(createEncryptStream({ passphrase: 'right', scryptWorkFactor: 10 }), data);
    await failure(run(createDecryptStream({ passphrase: 'wrong' }), pfile), 'integrityError', /^passphrase does not decrypt this file$/);
    await failure(decrypt(me, pfile), 'badInput', /passphrase-encrypted/);
    await failure(run(createDecryptStream({ passphrase: 'right' }), file), 'badInput', /no identity was given/);
  });

  it('rejects every single-bit flip in the header', async () => {
    for (let i = 0; i < hlen; i++) {
      const bad = Buffer.from(file);
      bad[i]! ^= 0x01;
      await failure(decrypt(me, bad), 'integrityError', /./);
    }
    const bad = Buffer.from(file);
    const macAt = hlen - 10;
    bad[macAt] = bad[macAt] === 0x41 ? 0x42 : 0x41; // still canonical base64, different MAC
    await failure(decrypt(me, bad), 'integrityError', /^header MAC mismatch$/);
  });

  it('rejects a flipped byte in the payload', async () => {
    for (const [at, chunk] of [[hlen, 0], [hlen + 16 + 5, 0], [hlen + 16 + 65552 + 7, 1], [file.length - 1, 3]] as const) {
      const bad = Buffer.from(file);
      bad[at]! ^= 0x80;
      await failure(decrypt(me, bad), 'integrityError', new RegExp(`^payload chunk ${chunk} failed authentication \\(corrupted or truncated\\)$`));
    }
  });

  it('rejects truncated files', async () => {
    const cuts: Array<[number, RegExp]> = [
      [0, /input is empty/],
      [10, /ends inside the age header/],
      [hlen - 1, /ends inside the age header/],
      [hlen, /file ends before the final chunk \(truncated\)/],
      [hlen + 10, /file ends before the final chunk \(truncated\)/],
      [hlen + 16 + 65552, /file ends before the final chunk \(truncated\)/],
      [hlen + 16 + 2 * 65552, /file ends before the final chunk \(truncated\)/],
      [hlen + 16 + 65552 + 100, /payload chunk 1 failed authentication/],
      [file.length - 1, /payload chunk 3 failed authentication/],
    ];
    for (const [len, msg] of cuts) await failure(decrypt(me, file.subarray(0, len)), 'integrityError', msg);
  });

  it('rejects appended bytes', async () => {
    await failure(decrypt(me, Buffer.concat([file, Buffer.from([0])])), 'integrityError', /payload chunk 3 failed/);
    const exact = await encrypt([ids[0]!.recipient], randomBytes(KiB64));
    for (const extra of [1, 16, 70000]) {
      await failure(decrypt(me, Buffer.concat([exact, randomBytes(extra)])), 'integrityError', /^trailing data after final chunk$/);
    }
  });

  it('rejects input that is not a binary age file', async () => {
    await failure(decrypt(me, Buffer.from('hello world, this is plain text\n')), 'integrityError', /not an age file/);
    await failure(decrypt(me, Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n')), 'integrityError', /ASCII-armored/);
    await failure(decrypt(me, Buffer.from('age-encryption.org/v2\n')), 'integrityError', /unsupported age format version "age-encryption.org\/v2"/);
  });
});

describe('age known answers and crafted vectors', () => {
  // Both files were produced by the reference age 1.1.1 CLI (`age -r`, and `age -p` at its default
  // work factor 18) over the plaintext "known answer from age 1.1.1\n".
  const plaintext = 'known answer from age 1.1.1\n';
  const x25519File =
    'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBzb05zQWROWUN0QVZ1bXpNejFmV0dRWmg2OEFyc09la0J3aFlmODA5cVdRCjRTVlBScHZzR1RaWU4rMEVLeXlURTNLdURmb3BFUGd2YVBHb1lPOU9JaTgKLS0tIHc3a0p4VXlWMHRIc0JRL0VkWFUzaHlKSHk2eVVVV1hndmZCSWkxUFBtNjgK/NAPSjw46hzM8IkE1AqvfDbktB05C8wdskD+dKyMYkwI07fq3yLNtI2xW0PEnJtqnLEJyXrOwBhYNJ9+';
  const scryptFile =
    'YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlwdCBBb2w3U2tSamZxWk9kSjBERHE5UXlRIDE4CnllemFkNG5hTUI5TjlkMVh0K1N1SDNDOTh6Qm00ZUhOanpzQlQva2xmaU0KLS0tIGQ5dmJkVElEL040eFh4NHZ0enU0eHhMZGU3Mm14Z013M2ZrcHVWNytwZmcKzLgSKeiibT3rvQDShqLPGQUkcYdK3y12TLnkb68r5m9eKc/YaDw00UuUVG0Qo2tPSKceh3gLbg4sVQZm';

  it('decrypts files written by the age CLI', async () => {
    expect((await decrypt([TESTKIT_IDENTITY], Buffer.from(x25519File, 'base64'))).toString()).toBe(plaintext);
    const out = await run(createDecryptStream({ passphrase: 'kat passphrase' }), Buffer.from(scryptFile, 'base64'));
    expect(out.toString()).toBe(plaintext);
  });

  // Crafted in the manner of the CCTV testkit: a fixed file key, hand-written header lines.
  const fileKey = Buffer.from('YELLOW SUBMARINE');
  const pass = 'password';
  const salt = Buffer.alloc(16, 9);
  async function scryptStanza(logN: number, args = `${b64(salt)} ${logN}`): Promise<string> {
    return `-> scrypt ${args}\n${b64(aeadSeal(await scryptWrapKey(pass, salt, logN), Buffer.alloc(12), fileKey))}\n`;
  }
  function craft(stanzas: string, chunks: Array<[Buffer, boolean]>, mac?: string): Buffer {
    const toDashes = Buffer.from(`age-encryption.org/v1\n${stanzas}---`);
    const nonce = Buffer.alloc(16, 3);
    const key = hkdf(fileKey, nonce, 'payload');
    const sealed = chunks.map(([p, last], i) => aeadSeal(key, chunkNonce(i, last), p));
    return Buffer.concat([toDashes, Buffer.from(` ${mac ?? b64(headerMac(fileKey, toDashes))}\n`), nonce, ...sealed]);
  }
  const open = (f: Buffer) => run(createDecryptStream({ passphrase: pass, identities: [TESTKIT_IDENTITY] }), f);

  it('accepts a full final chunk and rejects an empty final chunk after data', async () => {
    const s = await scryptStanza(4);
    const full = Buffer.alloc(KiB64, 1);
    expect((await open(craft(s, [[full, true]]))).equals(full)).toBe(true);
    await failure(open(craft(s, [[full, false], [Buffer.alloc(0), true]])), 'integrityError', /chunk 1 is an empty final chunk/);
  });

  it('rejects malformed headers', async () => {
    const s = await scryptStanza(4);
    const lowOrder = Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7', 'hex');
    const x = `-> X25519 ${b64(lowOrder)}\n${b64(Buffer.alloc(32))}\n`;
    const payload: Array<[Buffer, boolean]> = [[Buffer.from('age'), true]];
    const cases: Array<[string, Buffer, RegExp]> = [
      ['low-order share', craft(x, payload), /low-order/],
      ['scrypt mixed with X25519', craft(s + x, payload), /scrypt stanza must be the only stanza/],
      ['padded body', craft(s.replace(/\n$/, '=\n'), payload), /invalid stanza body line/],
      ['CRLF', craft(s.replace(/\n/g, '\r\n'), payload), /malformed/],
      ['leading zero work factor', craft(await scryptStanza(4, `${b64(salt)} 04`), payload), /invalid scrypt stanza/],
      ['work factor over the limit', craft(await scryptStanza(4, `${b64(salt)} 23`), payload), /2\^23 exceeds the limit 2\^22/],
      ['non-canonical MAC', craft(s, payload, `${b64(Buffer.alloc(32)).slice(0, 42)}B`), /invalid MAC line/],
      ['no stanzas', craft('', payload), /no recipient stanzas/],
      ['empty argument', craft(s.replace('-> scrypt ', '-> scrypt  '), payload), /invalid stanza arguments/],
    ];
    for (const [, f, msg] of cases) await failure(open(f), 'integrityError', msg);
    expect((await open(craft(s, payload))).toString()).toBe('age');
  });
});
