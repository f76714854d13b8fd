import { Flags } from '@oclif/core';
import { writeIdentityFile } from '../../core/identity-file.js';
import { writeSigningKeyFile } from '../../core/signing/keys.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../../cli/base-command.js';

export default class KeyGenerate extends TykdrCommand<typeof KeyGenerate> {
  static override summary = 'Generate an age X25519 identity (or, with --signing, an Ed25519 signing key) and print its public key.';
  static override description = `Writes the identity (AGE-SECRET-KEY-1...) to a new file with mode 0600, in the same format as age-keygen, and prints the recipient (age1...) to put in tykdr.yaml under encryption.recipients.

Keep the identity file off the backup host (a password manager, a vault, a safe): backing up needs only the recipient; restoring needs the identity. It also works with the standard age tool: age -d -i FILE.

With --signing: writes an Ed25519 private key (PKCS#8 PEM, mode 0600, the format of openssl genpkey) for signing.keyFile on the backup or drill host, and prints its public key as one line, tykdr-ed25519:<base64 of the 32 key bytes>, to put under signing.verifyKeys wherever manifests and reports are checked (and to give to auditors: tykdr report verify --key). --json also gives the public key as PEM, for openssl.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> key generate',
    '<%= config.bin %> key generate --output /secure/tykdr-identity.txt --json',
    '<%= config.bin %> key generate --signing --output /etc/tykdr/signing-key.pem',
  ];

  static override flags = {
    output: Flags.string({
      char: 'o',
      summary: 'Where to write the key; never overwritten. Default: tykdr-identity.txt, or tykdr-signing-key.pem with --signing.',
    }),
    signing: Flags.boolean({ summary: 'Generate an Ed25519 signing key for signed manifests and reports instead of an age identity.' }),
  };

  async run(): Promise<unknown> {
    if (this.flags.signing) {
      const k = await writeSigningKeyFile(this.flags.output ?? 'tykdr-signing-key.pem');
      this.note(`Signing key written to ${k.file} (mode 0600). Set signing.keyFile to it on the host that signs; never copy it elsewhere.`);
      this.note(`Put this public key (fingerprint ${k.fingerprint}) under signing.verifyKeys where snapshots and reports are checked:`);
      this.log(k.publicKey);
      return { public_key: k.publicKey, fingerprint: k.fingerprint, public_key_pem: k.publicKeyPem, signing_key_file: k.file };
    }
    const { recipient, file } = await writeIdentityFile(this.flags.output ?? 'tykdr-identity.txt');
    this.note(`Identity written to ${file} (mode 0600). Keep it safe and off the backup host.`);
    this.log(recipient);
    return { recipient, identity_file: file };
  }
}
