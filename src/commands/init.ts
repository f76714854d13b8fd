import { open } from 'node:fs/promises';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { parseRecipient } from '../core/age/index.js';
import { parseConfig } from '../core/config/load.js';
import { configTemplate } from '../core/config/template.js';
import { badInput } from '../core/errors.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../cli/base-command.js';

export default class Init extends TykdrCommand<typeof Init> {
  static override summary = 'Write a commented tykdr.yaml to start from.';
  static override description = `Writes a configuration with every section explained: store (local folder or S3), encryption recipients, tiers, and the Redis and config-file components. It never overwrites an existing file.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --recipient "$(tykdr key generate -o /secure/id.txt)" --store-path /var/backups/tyk',
  ];

  static override flags = {
    recipient: Flags.string({ summary: 'age recipient (age1...) to put in encryption.recipients.' }),
    'store-path': Flags.string({ summary: 'Folder for the local store.', default: './tykdr-backups' }),
  };

  async run(): Promise<unknown> {
    const file = path.resolve(this.flags.config);
    const text = configTemplate({ recipient: this.flags.recipient, storePath: this.flags['store-path'] });
    // A bad recipient fails here, not at the first backup.
    if (this.flags.recipient !== undefined) {
      parseRecipient(this.flags.recipient);
      parseConfig(text, file);
    }
    let fh;
    try {
      fh = await open(file, 'wx', 0o640);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw badInput(`cannot create ${file} (${code ?? err})`, code === 'EEXIST' ? 'the file exists; edit it, or pass --config NEW_PATH' : 'check the folder', err);
    }
    try {
      await fh.writeFile(text);
    } finally {
      await fh.close();
    }
    this.note(
      this.flags.recipient === undefined
        ? `Wrote ${file}. Next: set encryption.recipients (\`tykdr key generate\` prints one) and the components, then run \`tykdr backup\`.`
        : `Wrote ${file} with encryption.recipients set to ${this.flags.recipient}. Next: set the components (Redis address, config roots), then run \`tykdr backup\`.`,
    );
    return { config: file };
  }
}
