import { Flags } from '@oclif/core';
import { openReportingStore } from '../cli/store-events.js';
import { listDrills } from '../core/drill/history.js';
import { formatDuration } from '../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../cli/base-command.js';

export default class Drills extends TykdrCommand<typeof Drills> {
  static override summary = 'List past DR drills, newest first, with the trend of the measured RTO.';
  static override description = `Reads the drill reports stored next to the snapshots. TREND is the change of the measured RTO against the previous drill of the same plan.

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> drills', '<%= config.bin %> drills --plan full --json'];

  static override flags = { plan: Flags.string({ summary: 'Only drills of this plan.' }) };

  async run(): Promise<unknown> {
    const config = await this.loadConfig('store');
    const store = openReportingStore(config.store, (l) => this.note(l));
    const drills = await listDrills(store, { plan: this.flags.plan });
    if (drills.length === 0) this.log(`No drills recorded in ${store.location}. Run \`tykdr drill --plan full\`.`);
    else {
      const rows = [['FINISHED', 'PLAN', 'STATUS', 'RTO', 'OBJECTIVE', 'TREND', 'CHECKS', 'SNAPSHOT']];
      for (const d of drills) {
        const trend = d.rtoTrendSeconds === null ? '-' : `${d.rtoTrendSeconds >= 0 ? '+' : '-'}${formatDuration(Math.abs(d.rtoTrendSeconds) * 1000)}`;
        rows.push([
          d.finishedAt.replace(/\.\d+Z$/, 'Z'),
          d.plan,
          d.status === 'succeeded' ? 'passed' : 'FAILED',
          d.rtoSeconds === null ? 'n/a' : `${formatDuration(d.rtoSeconds * 1000)} ${d.rtoMet ? 'met' : 'MISSED'}`,
          formatDuration(d.rtoObjectiveSeconds * 1000),
          trend,
          `${d.checks.passed} ok, ${d.checks.failed} failed, ${d.checks.skipped} skipped`,
          d.snapshot,
        ]);
      }
      const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) this.log(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd());
    }
    return { location: store.location, drills };
  }
}
