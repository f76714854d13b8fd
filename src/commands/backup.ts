import { Flags } from '@oclif/core';
import { runBackup } from '../core/backup.js';
import { formatBytes } from '../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal } from '../cli/base-command.js';
import { backupPrinter } from '../cli/progress.js';
import { reportingBackends } from '../cli/store-events.js';

export default class Backup extends TykdrCommand<typeof Backup> {
  static override summary = 'Take an encrypted snapshot of the configured components.';
  static override description = `Streams each component (Redis RDB, config tarball) through compression and age encryption into the store, validates it, and writes the manifest last. A snapshot without a manifest is incomplete and is never used for restores.

Ctrl-C or SIGTERM stops the run promptly: no manifest is written and the partial objects are removed. If that clean-up hangs (a store that stopped answering), the process exits anyway TYKDR_GRACE seconds (default 10) after the signal; a second signal exits at once.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> backup',
    '<%= config.bin %> backup --component redis',
    '<%= config.bin %> backup --config /etc/tykdr/tykdr.yaml --json',
  ];

  static override flags = {
    component: Flags.string({ summary: 'Back up only this component (repeatable).', multiple: true }),
  };

  async run(): Promise<unknown> {
    const config = await this.loadConfig('backup');
    const interrupt = interruptSignal({ note: 'no manifest will be written' });
    const printer = this.jsonEnabled() ? undefined : backupPrinter((l) => this.note(l), process.stderr.isTTY === true);
    try {
      const result = await runBackup({ config, backends: reportingBackends((l) => this.note(l)), components: this.flags.component, signal: interrupt.signal, progress: printer });
      const artifacts = Object.values(result.manifest.components).map((c) => c.artifact);
      const stored = artifacts.reduce((n, a) => n + a.stored_bytes, 0);
      const data = artifacts.reduce((n, a) => n + a.plaintext_bytes, 0);
      // The same two sizes, in the same words, as `tykdr snapshots` (DATA, STORED) and `snapshot show`.
      this.log(
        `Snapshot ${result.id} complete: ${artifacts.length} component(s), data ${formatBytes(data)}, ` +
          `stored ${formatBytes(stored)} (compressed, encrypted) in ${result.location}`,
      );
      if (result.signedBy) this.note(`Manifest signed by ${result.signedBy}`);
      return { id: result.id, location: result.location, manifest: result.manifest, signed_by: result.signedBy ?? null };
    } finally {
      printer?.stop();
      interrupt.dispose();
    }
  }
}
