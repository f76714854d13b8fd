import { Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal, requireStoreFolder } from '../cli/base-command.js';
import { printReportSummary, restorePrinter } from '../cli/restore-output.js';
import { runDrill } from '../core/drill/drill.js';
import { badInput, TykdrError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import type { RandomPick } from '../core/drill/pick.js';
import { loadPlan } from '../core/plan/plan.js';
import { reportingBackends } from '../cli/store-events.js';
import { chooseStore } from '../core/copies/named-stores.js';
import { parseTimeFlag } from '../cli/time-flag.js';
import type { RestoreOptions } from '../core/restore/restore.js';
import { planRedisToTime, restoreRedisToTime } from '../backends/redis/pitr/restore-to-time.js';

export default class Drill extends TykdrCommand<typeof Drill> {
  static override summary = 'Run a DR drill: restore a snapshot into scratch targets, verify it, measure RTO and RPO.';
  static override description = `Restores the latest (or a chosen) snapshot with a plan into targets tykdr starts itself: a redis-server on a free port, throwaway databases (tykdr_drill_*) on the configured database servers, a temporary folder for config files. It runs the plan's verifications, measures RTO and RPO against the tiers, writes the report (HTML, Markdown, JSON) next to the snapshot, and tears the scratch targets down. Production targets are never written, restarted or probed. With drill.gateway.binary set, the drill also starts that Tyk Gateway against the scratch Redis and the restored apps/ and policies/ and runs the gateway checks against it; without it the report says "gateway not proven". --pick random --within 30d drills a random complete snapshot of the last 30 days instead of the latest (reproducible with --seed).

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> drill --plan full',
    '<%= config.bin %> drill --plan redis --snapshot 20261121T093012Z-4f9a1c --json',
    '<%= config.bin %> drill --plan full --ticket AUDIT-2026-Q4',
    '<%= config.bin %> drill --plan full --store offsite    # prove the off-site copy',
    '<%= config.bin %> drill --plan full --pick random --within 30d --seed 42',
    '<%= config.bin %> drill --plan redis --to-time 1h    # prove the point-in-time chain of an hour ago'
  ];

  static override flags = {
    plan: Flags.string({ summary: 'Plan name or file.', default: 'full' }),
    snapshot: Flags.string({ summary: 'Snapshot id, or "latest".' }),
    identity: Flags.string({ char: 'i', summary: 'age identity file (default: encryption.identityFile).' }),
    ticket: Flags.string({ summary: 'Change or audit ticket this drill belongs to; recorded in the report\'s evidence.' }),
    store: Flags.string({
      summary: 'Drill the snapshot in this store ("primary", or a name under copies:); when it cannot be used, the other stores are tried in config order.',
    }),
    'no-fallback': Flags.boolean({ summary: 'Use only the store named by --store (or primary): never fall back to a copy.' }),
    pick: Flags.string({ summary: 'How to choose the snapshot: "latest" (default) or "random" (a random complete one within --within).', options: ['latest', 'random'], default: 'latest' }),
    within: Flags.string({ summary: 'With --pick random: how far back to pick from, e.g. 30d.', default: '30d' }),
    'to-time': Flags.string({
      summary: 'Point-in-time drill of Redis (plan redis): the base snapshot of a `tykdr stream` chain restored into the scratch Redis, then its feed replayed up to this time (ISO, or a duration ago).',
      exclusive: ['snapshot', 'pick'],
    }),
    seed: Flags.integer({ summary: 'With --pick random: seed of the pick (the same seed over the same snapshots picks the same one); default: a random seed, reported.', min: 0 }),
  };

  async run(): Promise<unknown> {
    const config = await this.loadConfig('all');
    // The store must be there, unless a copy can stand in for it (chooseStore then says which store is used).
    if (Object.keys(config.copies).length === 0) await requireStoreFolder(config.store, config.file);
    const plan = await loadPlan(this.flags.plan);
    let pick: RandomPick | undefined;
    if (this.flags.pick === 'random') {
      if (this.flags.snapshot !== undefined) throw badInput('--snapshot and --pick random exclude each other', 'use one of them');
      const withinMs = parseDuration(this.flags.within);
      if (withinMs === null || withinMs <= 0) throw badInput(`--within "${this.flags.within}" is not a duration`, 'write it like 30d, 12h or 90m');
      pick = { within: this.flags.within, withinMs, seed: this.flags.seed };
    } else if (this.flags.seed !== undefined) {
      throw badInput('--seed goes with --pick random', 'add --pick random, or leave --seed out');
    }
    const interrupt = interruptSignal();
    const backends = reportingBackends((l) => this.note(l));
    try {
      const chosen = await chooseStore(config, backends.openStore, {
        preferred: this.flags.store,
        fallback: !this.flags['no-fallback'],
        snapshot: this.flags.snapshot,
        signal: interrupt.signal,
        note: (l) => this.note(l),
      });
      const toTime = parseTimeFlag('--to-time', this.flags['to-time']);
      const pit = toTime ? await planRedisToTime({ config, backends, plan, store: chosen.store, at: toTime, signal: interrupt.signal }) : undefined;
      if (pit) this.note(`point in time ${pit.summary.asked}: base snapshot ${pit.summary.base_snapshot}, ${pit.summary.segments} segment(s), reaching ${pit.summary.reached}`);
      const { report, saved, failureKind } = await runDrill({
        ...(toTime && pit ? { restore: (o: RestoreOptions) => restoreRedisToTime({ ...o, at: toTime }) } : {}),
        backends,
        store: chosen.store,
        storeFallback: chosen.skipped,
        config,
        plan,
        snapshot: pit?.summary.base_snapshot ?? this.flags.snapshot,
        identityFile: this.flags.identity,
        ticket: this.flags.ticket,
        pick,
        signal: interrupt.signal,
        progress: this.jsonEnabled() ? undefined : restorePrinter((l) => this.note(l)),
      });
      if (!this.jsonEnabled()) printReportSummary(report, saved, (l) => this.log(l));
      if (failureKind) process.exitCode = new TykdrError(failureKind, '').exitCode;
      return { store: chosen.name, ...(chosen.skipped.length ? { store_fallback: chosen.skipped } : {}), report, report_files: saved.files, stored_report: saved.stored, ...(saved.signatureError ? { report_signature_error: saved.signatureError } : {}) };
    } finally {
      interrupt.dispose();
    }
  }
}
