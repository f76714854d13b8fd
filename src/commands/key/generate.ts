import { Flags } from '@oclif/core';
import { writeIdentityFile } from '../../core/identity-file.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../../cli/base-command.js';

export default class KeyGenerate extends TykdrCommand<typeof KeyGenerate> {
  static override summary = 'Generate an age X25519 identity and print its public recipient.';
  static override description = `Writes the identity (AGE-SECRET-KEY-1...) to a new file with mode 0600, in the same format as age-keygen, and prints the recipient (age1...) to put in tykdr.yaml under encryption.recipients.

Keep the identity file off the backup host (a password manager, a vault, a safe): backing up needs only the recipient; restoring needs the identity. It also works with the standard age tool: age -d -i FILE.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> key generate',
    '<%= config.bin %> key generate --output /secure/tykdr-identity.txt --json',
  ];

  static override flags = {
    output: Flags.string({ char: 'o', summary: 'Where to write the identity; never overwritten.', default: 'tykdr-identity.txt' }),
  };

  async run(): Promise<unknown> {
    const { recipient, file } = await writeIdentityFile(this.flags.output);
    this.note(`Identity written to ${file} (mode 0600). Keep it safe and off the backup host.`);
    this.log(recipient);
    return { recipient, identity_file: file };
  }
}
