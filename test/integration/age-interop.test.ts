import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, type Transform } from 'node:stream';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import {
  createDecryptStream,
  createEncryptStream,
  formatIdentityFile,
  generateIdentity,
  parseIdentityFile,
} from '../../src/core/age/index.js';

// Interop with the reference implementation: the Debian `age` 1.1.1 CLI, installed by scripts/tools.sh.
const AGE = '/usr/bin/age';
const AGE_KEYGEN = '/usr/bin/age-keygen';

function exec(cmd: string, args: string[], stdin = ''): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve({ stdout: Buffer.concat(out), stderr }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`)),
    );
    // A child that exits without reading its input makes this write fail with EPIPE: its exit code and
    // output say what happened, so that one is not an error here. Without a listener it would be an
    // unhandled error that ends the test run.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(stdin);
  });
}

/**
 * age 1.1.1 reads passphrases only from a terminal (/dev/tty), never from stdin or the environment.
 * util-linux `script` gives it a pseudo-terminal and forwards our stdin to it, so the passphrase
 * direction is tested against the real CLI too (the known-answer scrypt vector in the unit tests
 * was produced the same way).
 */
const withTty = (command: string, typed: string) => exec('script', ['-q', '-e', '-c', command, '/dev/null'], typed);

async function streamFile(t: Transform, from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), t, createWriteStream(to));
}

describe('age interop with the age CLI', () => {
  let dir: string;
  const ours = generateIdentity();
  let ourKeyFile: string;
  let cliKeyFile: string;
  let cliRecipient: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tykdr-age-'));
    ourKeyFile = path.join(dir, 'ours.key');
    await writeFile(ourKeyFile, formatIdentityFile(ours.identity), { mode: 0o600 });
    cliKeyFile = path.join(dir, 'cli.key');
    const { stderr } = await exec(AGE_KEYGEN, ['-o', cliKeyFile]);
    cliRecipient = /Public key: (age1[a-z0-9]+)/.exec(stderr)?.[1] ?? '';
    expect(cliRecipient).toMatch(/^age1/);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes key files in age-keygen format with mode 0600', async () => {
    expect((await stat(ourKeyFile)).mode & 0o777).toBe(0o600);
    const text = await readFile(ourKeyFile, 'utf8');
    expect(text).toMatch(new RegExp(`^# created: \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\n# public key: ${ours.recipient}\\n${ours.identity}\\n$`));
    expect(parseIdentityFile(await readFile(cliKeyFile, 'utf8'), 'cli.key')[0]?.recipient).toBe(cliRecipient);
  });

  it.each([0, 65536, 2 * 1024 * 1024])('our %i-byte file decrypts with age -d', async (size) => {
    const plain = path.join(dir, `plain-${size}`);
    const data = randomBytes(size);
    await writeFile(plain, data);
    await streamFile(createEncryptStream({ recipients: [ours.recipient] }), plain, `${plain}.age`);
    // To stdout: age creates an -o file lazily, so an empty plaintext would leave none.
    const { stdout } = await exec(AGE, ['-d', '-i', ourKeyFile, `${plain}.age`]);
    expect(stdout.equals(data)).toBe(true);
  });

  it.each([0, 1, 65536, 2 * 65536, 2 * 1024 * 1024 + 3])('age -r output of %i bytes decrypts with our stream', async (size) => {
    const plain = path.join(dir, `cli-${size}`);
    const data = randomBytes(size);
    await writeFile(plain, data);
    await exec(AGE, ['-r', cliRecipient, '-o', `${plain}.age`, plain]);
    const identities = parseIdentityFile(await readFile(cliKeyFile, 'utf8'), 'cli.key');
    await streamFile(createDecryptStream({ identities }), `${plain}.age`, `${plain}.out`);
    expect((await readFile(`${plain}.out`)).equals(data)).toBe(true);
  });

  it('handles multiple recipients in both directions', async () => {
    const third = generateIdentity();
    const data = randomBytes(300_000);
    const plain = path.join(dir, 'multi');
    await writeFile(plain, data);
    await streamFile(createEncryptStream({ recipients: [third.recipient, cliRecipient, ours.recipient] }), plain, `${plain}.ours.age`);
    for (const key of [cliKeyFile, ourKeyFile]) {
      expect((await exec(AGE, ['-d', '-i', key, `${plain}.ours.age`])).stdout.equals(data)).toBe(true);
    }
    await exec(AGE, ['-r', third.recipient, '-r', cliRecipient, '-r', ours.recipient, '-o', `${plain}.cli.age`, plain]);
    for (const identity of [third.identity, ours.identity]) {
      await streamFile(createDecryptStream({ identities: [identity] }), `${plain}.cli.age`, `${plain}.out`);
      expect((await readFile(`${plain}.out`)).equals(data)).toBe(true);
    }
  });

  it('interoperates on passphrase (scrypt) files through a pseudo-terminal', async () => {
    const data = randomBytes(100_000);
    const plain = path.join(dir, 'pass');
    await writeFile(plain, data);
    const passphrase = 'correct horse battery staple';
    // Ours at the CLI's default work factor (18) -> age -d.
    await streamFile(createEncryptStream({ passphrase }), plain, `${plain}.ours.age`);
    await withTty(`${AGE} -d -o ${plain}.ours.out ${plain}.ours.age`, `${passphrase}\n`);
    expect((await readFile(`${plain}.ours.out`)).equals(data)).toBe(true);
    // age -p (asks twice) -> ours.
    await withTty(`${AGE} -p -o ${plain}.cli.age ${plain}`, `${passphrase}\n${passphrase}\n`);
    expect((await readFile(`${plain}.cli.age`)).toString('latin1', 0, 40)).toMatch(/^age-encryption\.org\/v1\n-> scrypt /);
    await streamFile(createDecryptStream({ passphrase }), `${plain}.cli.age`, `${plain}.cli.out`);
    expect((await readFile(`${plain}.cli.out`)).equals(data)).toBe(true);
  });

  it('age -d rejects our file for a non-recipient, and we reject its file likewise', async () => {
    const other = generateIdentity();
    const otherKey = path.join(dir, 'other.key');
    await writeFile(otherKey, formatIdentityFile(other.identity), { mode: 0o600 });
    const plain = path.join(dir, 'neg');
    await writeFile(plain, 'x');
    await streamFile(createEncryptStream({ recipients: [ours.recipient] }), plain, `${plain}.age`);
    await expect(exec(AGE, ['-d', '-i', otherKey, `${plain}.age`])).rejects.toThrow(/no identity matched/);
    const err = await pipeline(Readable.from([await readFile(`${plain}.age`)]), createDecryptStream({ identities: [other.identity] }), async function* (src) {
      for await (const _ of src) yield _;
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no identity matches/);
  });
});
