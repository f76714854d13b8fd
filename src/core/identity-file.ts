import { open } from 'node:fs/promises';
import path from 'node:path';
import { formatIdentityFile, generateIdentity } from './age/index.js';
import { badInput } from './errors.js';

/** Creates a new age identity file (mode 0600, never overwriting) and returns its recipient. */
export async function writeIdentityFile(file: string): Promise<{ recipient: string; file: string }> {
  const abs = path.resolve(file);
  const { identity, recipient } = generateIdentity();
  let fh;
  try {
    fh = await open(abs, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(
      `cannot create identity file ${abs} (${code ?? err})`,
      code === 'EEXIST' ? 'an identity file is never overwritten: choose another --output or move the old file' : 'check the folder exists and is writable',
      err,
    );
  }
  try {
    await fh.writeFile(formatIdentityFile(identity));
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
  return { recipient, file: abs };
}
