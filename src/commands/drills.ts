import path from 'node:path';
import { Flags } from '@oclif/core';
import { openReportingStore } from '../cli/store-events.js';
import { writeDrillHistory } from '../core/drill/history-report.js';
import { formatDuration } from '../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand } from '../cli/base-command.js';

/** The page flags take an optional FILE: a bare --html (or --markdown) writes drills.html (.md) into the drill report folder. */
const PAGE_FLAGS = ['--html', '--markdown'];

export default class Drills extends TykdrCommand<typeof Drills> {
  static override summary = 'List past DR drills, newest first, with the trend of the measured RTO; write the history as HTML or Markdown.';
  static override description = `Reads the drill reports stored next to the snapshots. TREND is the change of the measured RTO against the previous drill of the same plan. STATUS is the verdict: passed, FAILED (a step failed), MISSED (an objective was missed) or NOT PROVEN (checks were skipped).

--html [FILE] and --markdown [FILE] also write the drill history report: pass rate per plan, when each component was last proven, a chart of the RTO per plan over time with the objectives, and every drill with its verdict and a link to its own report. Without FILE: drills.html (drills.md) in drill.reportDir (default restore.reportDir).

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> drills',
    '<%= config.bin %> drills --plan full --json',
    '<%= config.bin %> drills --html',
    '<%= config.bin %> drills --html /var/www/dr/drills.html --markdown drills.md',
  ];

  static override flags = {
    plan: Flags.string({ summary: 'Only drills of this plan.' }),
    html: Flags.string({ summary: 'Write the drill history as one self-contained HTML page to FILE (default: drills.html in the drill report folder).', helpValue: '[FILE]' }),
    markdown: Flags.string({ summary: 'Write the drill history as Markdown to FILE (default: drills.md in the drill report folder).', helpValue: '[FILE]' }),
  };

  public override async init(): Promise<void> {
    // oclif flags need a value; a bare --html gets the empty value, which means "the default file".
    this.argv = this.argv.flatMap((a, i, all) => (PAGE_FLAGS.includes(a) && (i === all.length - 1 || all[i + 1]!.startsWith('-')) ? [a, ''] : [a]));
    await super.init();
  }

  async run(): Promise<unknown> {
    const config = await this.loadConfig('store', { reads: true });
    const store = openReportingStore(config.store, (l) => this.note(l));
    const reportDir = config.drill.reportDir ?? config.restore.reportDir;
    const page = (file: string | undefined, name: string): string | undefined => (file === undefined ? undefined : file === '' ? path.join(reportDir, name) : file);
    const { drills, files } = await writeDrillHistory({
      store,
      plan: this.flags.plan,
      html: page(this.flags.html, 'drills.html'),
      markdown: page(this.flags.markdown, 'drills.md'),
      reportDirs: [...new Set([reportDir, config.restore.reportDir])],
      localStorePath: config.store.kind === 'local' ? config.store.path : undefined,
    });
    if (drills.length === 0) this.log(`No drills recorded in ${store.location}. Run \`tykdr drill --plan full\`.`);
    else {
      const rows = [['FINISHED', 'PLAN', 'STATUS', 'RTO', 'OBJECTIVE', 'TREND', 'CHECKS', 'SNAPSHOT']];
      for (const d of drills) {
        const trend = d.rtoTrendSeconds === null ? '-' : `${d.rtoTrendSeconds >= 0 ? '+' : '-'}${formatDuration(Math.abs(d.rtoTrendSeconds) * 1000)}`;
        rows.push([
          d.finishedAt.replace(/\.\d+Z$/, 'Z'),
          d.plan,
          d.verdict === 'PASSED' ? 'passed' : d.verdict,
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
    for (const f of [files.html, files.markdown]) if (f) this.log(`Drill history: ${f}`);
    return { location: store.location, drills, ...(files.html || files.markdown ? { files } : {}) };
  }
}
