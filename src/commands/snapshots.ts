import { openReportingStore } from '../cli/store-events.js';
import { listSnapshots } from '../core/catalog.js';
import { formatBytes, formatDuration } from '../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../cli/base-command.js';

export default class Snapshots extends TykdrCommand<typeof Snapshots> {
  static override summary = 'List snapshots in the store, newest first.';
  static override description = `Shows each snapshot's id, age, completeness, components and stored size. A snapshot is complete only when its manifest exists; incomplete ones (interrupted or failed backups) are listed so they can be seen and pruned.

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> snapshots', '<%= config.bin %> snapshots --json'];

  async run(): Promise<unknown> {
    const config = await this.loadConfig('store');
    const store = openReportingStore(config.store, (l) => this.note(l));
    const list = await listSnapshots(store);
    const rows = list.map((s) => ({
      id: s.id,
      complete: s.complete,
      created_at: s.createdAt.toISOString(),
      components: s.components,
      objects: s.objects,
      stored_bytes: s.storedBytes,
      ...(s.problem ? { problem: s.problem } : {}),
    }));
    if (list.length === 0) {
      this.log(`No snapshots in ${store.location}.`);
    } else {
      const now = Date.now();
      const table = [['ID', 'AGE', 'STATUS', 'SIZE', 'COMPONENTS']];
      for (const s of list) {
        table.push([
          s.id,
          `${formatDuration(now - s.createdAt.getTime())} ago`,
          s.complete ? 'complete' : 'INCOMPLETE',
          formatBytes(s.storedBytes),
          s.components.join(','),
        ]);
      }
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      for (const r of table) this.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
    }
    return { location: store.location, snapshots: rows };
  }
}
