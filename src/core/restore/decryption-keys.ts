import { readFile } from 'node:fs/promises';
import { parseIdentityFile, type AgeIdentity } from '../age/index.js';
import type { Config } from '../config/load.js';
import { resolvePassphrase } from '../encryption-keys.js';
import { badInput } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { Secret } from '../secret.js';

export interface DecryptionKeys {
  identities: AgeIdentity[];
  passphrase?: Secret;
}

/**
 * What a restore decrypts with: the age identity file (--identity, or encryption.identityFile) for
 * recipient-encrypted snapshots, the configured passphrase for passphrase-encrypted ones.
 */
export async function resolveDecryptionKeys(config: Config, manifest: Manifest, identityFile?: string): Promise<DecryptionKeys> {
  if (manifest.encryption.passphrase) {
    const passphrase = await resolvePassphrase(config);
    if (!passphrase) {
      throw badInput(
        `snapshot ${manifest.id} is encrypted with a passphrase, and no passphrase is configured`,
        'set encryption.passphrase ({ env: VAR } or { file: PATH }) in tykdr.yaml',
      );
    }
    return { identities: [], passphrase };
  }
  const file = identityFile ?? config.encryption.identityFile;
  if (file === undefined) {
    throw badInput(
      `restoring snapshot ${manifest.id} needs the age identity it was encrypted to (${manifest.encryption.recipients.map((r) => r.fingerprint).join(', ')})`,
      'pass --identity FILE, or set encryption.identityFile in tykdr.yaml',
    );
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw badInput(`cannot read identity file ${file} (${(err as NodeJS.ErrnoException).code ?? err})`, 'check --identity / encryption.identityFile', err);
  }
  return { identities: parseIdentityFile(text, file) };
}
