import { readFile } from 'node:fs/promises';
import { parseRecipient, recipientFingerprint } from './age/index.js';
import type { Config } from './config/load.js';
import { badInput } from './errors.js';
import type { EncryptionKeys } from './pipeline.js';
import { Secret } from './secret.js';

/**
 * Resolves what a backup encrypts to: the configured recipients (inline and from recipientsFile),
 * or a passphrase from the environment or a file. Only public keys are needed to back up.
 */
export async function resolveEncryptionKeys(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<EncryptionKeys> {
  const enc = config.encryption;
  const recipients = [...enc.recipients];
  if (enc.recipientsFile !== undefined) {
    let text: string;
    try {
      text = await readFile(enc.recipientsFile, 'utf8');
    } catch (err) {
      throw badInput(
        `encryption.recipientsFile: cannot read ${enc.recipientsFile} (${(err as NodeJS.ErrnoException).code ?? err})`,
        'check the path, or list recipients inline under encryption.recipients',
        err,
      );
    }
    for (const line of text.split(/\r?\n/)) {
      const t = line.trim();
      if (t !== '' && !t.startsWith('#')) recipients.push(t);
    }
  }
  recipients.forEach((r, i) => {
    try {
      parseRecipient(r);
    } catch (err) {
      throw badInput(`${config.file}: encryption.recipients[${i}] "${r}" is not an age X25519 recipient`, 'recipients look like age1... (see `tykdr key generate`)', err);
    }
  });
  const passphrase = await resolvePassphrase(config, env);
  if (recipients.length === 0 && passphrase === undefined) {
    throw badInput(
      `${config.file}: no encryption recipient configured: backups are always encrypted`,
      'run `tykdr key generate`, keep the identity file safe (off this host), and add the printed age1... recipient to encryption.recipients',
    );
  }
  if (recipients.length > 0 && passphrase !== undefined) {
    throw badInput(
      `${config.file}: encryption has both recipients and a passphrase; the age format allows a passphrase only alone`,
      'keep either encryption.recipients or encryption.passphrase',
    );
  }
  return passphrase ? { recipients: [], passphrase } : { recipients };
}

export function describeKeys(keys: EncryptionKeys): { recipients: { fingerprint: string }[]; passphrase: boolean } {
  return { recipients: keys.recipients.map((r) => ({ fingerprint: recipientFingerprint(r) })), passphrase: keys.passphrase !== undefined };
}

/** The configured passphrase (from its env var or file), or undefined when none is configured. */
export async function resolvePassphrase(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<Secret | undefined> {
  const enc = config.encryption;
  let passphrase: Secret | undefined;
  if (enc.passphrase !== undefined) {
    if (enc.passphrase.env !== undefined) {
      const v = env[enc.passphrase.env];
      if (v === undefined || v === '') {
        throw badInput(`encryption.passphrase.env: environment variable ${enc.passphrase.env} is not set`, `export ${enc.passphrase.env}=...`);
      }
      passphrase = new Secret(v);
    } else if (enc.passphrase.file !== undefined) {
      try {
        passphrase = new Secret((await readFile(enc.passphrase.file, 'utf8')).split(/\r?\n/)[0] ?? '');
      } catch (err) {
        throw badInput(`encryption.passphrase.file: cannot read ${enc.passphrase.file}`, 'check the path and its permissions', err);
      }
      if (passphrase.reveal() === '') throw badInput(`encryption.passphrase.file: ${enc.passphrase.file} is empty`, 'write the passphrase on its first line');
    }
  }
  return passphrase;
}
