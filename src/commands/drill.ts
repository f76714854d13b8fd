import { Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal } from '../cli/base-command.js';
import { printReportSummary, restorePrinter } from '../cli/restore-output.js';
import { runDrill } from '../core/drill/drill.js';
import { TykdrError } from '../core/errors.js';
import { loadPlan } from '../core/plan/plan.js';
import { reportingBackends } from '../cli/store-events.js';
import { chooseStore } from '../core/copies/named-stores.js';

export default class Drill extends TykdrCommand<typeof Drill> {
  static override summary = 'Run a DR drill: restore a snapshot into scratch targets, verify it, measure RTO and RPO.';
  static override description = `Restores the latest (or a chosen) snapshot with a plan into targets tykdr starts itself: a redis-server on a free port, throwaway databases (tykdr_drill_*) on the configured database servers, a temporary folder for config files. It runs the plan's verifications, measures RTO and RPO against the tiers, writes the report (HTML, Markdown, JSON) next to the snapshot, and tears the scratch targets down. Production targets are never written, restarted or probed: gateway and dashboard checks are skipped in drills.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> drill --plan full',
    '<%= config.bin %> drill --plan redis --snapshot 20261121T093012Z-4f9a1c --json',
    '<%= config.bin %> drill --plan full --ticket AUDIT-2026-Q4',
    '<%= config.bin %> drill --plan full --store offsite    # prove the off-site copy',
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
  };

  async run(): Promise<unknown> {
    const config = await this.loadConfig();
    const plan = await loadPlan(this.flags.plan);
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
      const { report, saved, failureKind } = await runDrill({
        backends,
        store: chosen.store,
        storeFallback: chosen.skipped,
        config,
        plan,
        snapshot: this.flags.snapshot,
        identityFile: this.flags.identity,
        ticket: this.flags.ticket,
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
