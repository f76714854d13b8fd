import { createInterface } from 'node:readline/promises';
import { Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal, requireStoreFolder } from '../cli/base-command.js';
import { restorePrinter, printDryRun, printReportSummary } from '../cli/restore-output.js';
import { parseTimeFlag } from '../cli/time-flag.js';
import { badInput, TykdrError } from '../core/errors.js';
import { describeKilled, journalDir, killedRestores, type JournalEntry } from '../core/restore/journal.js';
import { loadPlan } from '../core/plan/plan.js';
import { parseTargetFlag, withOverrides } from '../core/restore/overrides.js';
import { lastMeasuredDuration, saveReport } from '../core/restore/report-files.js';
import { planRestore, runRestore } from '../core/restore/restore.js';
import { reportingBackends } from '../cli/store-events.js';
import { planRedisToTime, previewRedisToTime, restoreRedisToTime } from '../backends/redis/pitr/restore-to-time.js';
import { chooseStore } from '../core/copies/named-stores.js';
import { checkSelection, type KeySelection } from '../core/tyk/key-selection.js';
import type { KeyClass } from '../core/tyk/key-classes.js';

export default class Restore extends TykdrCommand<typeof Restore> {
  static override summary = 'Restore a snapshot with a plan, verify every step, and measure RTO and RPO.';
  static override description = `Runs a restore plan (plans/full.yaml: Redis, database, Dashboard, Gateway). Every artifact is downloaded, checked against its SHA-256 and decrypted into a staging folder first: nothing touches a target until all artifacts proved intact. A restore that would overwrite live data asks first (or needs --yes). Each step is verified; the report (JSON, Markdown, HTML with a timeline) goes to restore.reportDir and next to the snapshot in the store.

RTO is measured from --incident-at (or the restore start) to the last passed verification; RPO per component is the incident time minus the snapshot's consistent point. Both are compared with the components' tiers.

SELECTIVE REDIS RESTORE (plan redis): --key PATTERN (Redis glob), --class CLASS (must, should, quota, ephemeral, analytics, mdcb, other), --org ORG_ID (sessions' org_id, orgkey.<org>, cert-raw-<org>..., cert-<org>-index) and --api API_ID (sessions' access_rights, oauth-data.<api>.*) pick keys from the snapshot; each flag repeats (any of its values), different flags must all match. Only the selected keys are written, into the running Redis; no other key is touched (no FLUSH, no file swap). Existing keys are kept and listed unless --overwrite (--no-overwrite is the default of a selective restore, and alone restores every missing key). --dry-run stages the snapshot (needs the identity) and lists what would be written, kept and skipped. With --to-time the keys come back as they were at that time (base and feed put together in a scratch redis-server; the target never receives the feed). See docs/RESTORE.md "Selective restore".

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> restore --plan full --dry-run',
    '<%= config.bin %> restore --plan full --incident-at 2026-11-21T09:02:00Z --identity /secure/tykdr-identity.txt',
    '<%= config.bin %> restore --plan redis --snapshot 20261121T093012Z-4f9a1c --target redis=10.1.0.7:6379 --yes',
    '<%= config.bin %> restore --plan gateway --before 2026-11-20T00:00:00Z --to /srv/standby --json',
    '<%= config.bin %> restore --resume    # finish a restore that was killed',
    '<%= config.bin %> restore --plan redis --ticket CHG-1234 --yes',
    '<%= config.bin %> restore --plan redis --to-time 2026-11-21T09:01:59Z --yes    # point in time (tykdr stream)',
    '<%= config.bin %> restore --plan full --store offsite --yes    # from the off-site copy',
    '<%= config.bin %> restore --plan redis --api 5f3c8a --dry-run    # what restoring one API\'s keys and OAuth clients would write and keep',
    '<%= config.bin %> restore --plan redis --api 5f3c8a              # put back that API\'s deleted sessions and OAuth data; existing keys kept',
    '<%= config.bin %> restore --plan redis --key "oauth-data.*.oauth-clientid.my-client" --overwrite --yes',
    '<%= config.bin %> restore --plan redis --org 5e9d9544a1dcd60001d0ed20 --class must --json',
    '<%= config.bin %> restore --plan redis --no-overwrite             # every key the live Redis lost, nothing replaced',
    '<%= config.bin %> restore --plan redis --to-time 2026-11-21T09:01:59Z --api 5f3c8a    # that API\'s keys as they were then',
  ];

  static override flags = {
    plan: Flags.string({ summary: 'Plan name (full, redis, database, dashboard, gateway) or file.', default: 'full' }),
    snapshot: Flags.string({ summary: 'Snapshot id, or "latest".', exclusive: ['before'] }),
    before: Flags.string({ summary: 'Use the newest complete snapshot taken before this time (ISO, or a duration ago).' }),
    'to-time': Flags.string({
      summary: 'Point-in-time restore of Redis (plan redis): the base snapshot of a `tykdr stream` chain, then its replication feed replayed up to this time (ISO, or a duration ago).',
      exclusive: ['snapshot', 'before'],
    }),
    'incident-at': Flags.string({ summary: 'When the incident began (ISO, or a duration ago); RTO and RPO are measured from it.' }),
    'dry-run': Flags.boolean({ summary: 'Show the plan, objects, sizes, targets and expected duration; change nothing.' }),
    yes: Flags.boolean({ char: 'y', summary: 'Confirm overwriting live data without asking.' }),
    identity: Flags.string({ char: 'i', summary: 'age identity file (default: encryption.identityFile).' }),
    to: Flags.string({ summary: 'Extract config files under this folder instead of their original roots.' }),
    target: Flags.string({ summary: 'Restore a Redis component elsewhere: NAME=HOST:PORT (repeatable).', multiple: true }),
    'gateway-url': Flags.string({ summary: 'Verify this gateway instead of gateway.url.' }),
    'dashboard-url': Flags.string({ summary: 'Verify this dashboard instead of dashboard.url.' }),
    'allow-partial': Flags.boolean({
      summary: "Restore what the snapshot has when a plan step's component is configured but missing from the snapshot (otherwise an error before any write).",
    }),
    ticket: Flags.string({ summary: 'Change or incident ticket this restore belongs to; recorded in the report\'s evidence.' }),
    store: Flags.string({
      summary: 'Read the snapshot from this store ("primary", or a name under copies:); when it cannot be used, the other stores are tried in config order.',
    }),
    'no-fallback': Flags.boolean({ summary: 'Use only the store named by --store (or primary): never fall back to a copy.' }),
    key: Flags.string({ summary: 'Selective Redis restore: only keys matching this Redis glob pattern (repeatable).', multiple: true }),
    class: Flags.string({ summary: 'Selective Redis restore: only keys of this Tyk class (repeatable; default restore.classes).', multiple: true }),
    org: Flags.string({ summary: "Selective Redis restore: only this organisation's keys (repeatable).", multiple: true }),
    api: Flags.string({ summary: "Selective Redis restore: only this API's keys: sessions with access to it, its OAuth data (repeatable).", multiple: true }),
    overwrite: Flags.boolean({
      summary: 'With a selection: replace keys the target already holds (--no-overwrite, the default, keeps and lists them).',
      allowNo: true,
    }),
    resume: Flags.boolean({
      summary: 'Finish the newest restore that was killed on this host (from its journal): same snapshot, plan and targets; steps it finished are not run again.',
      exclusive: ['snapshot', 'before', 'target', 'to', 'dry-run', 'to-time'],
    }),
  };

  protected override partialRun(): boolean {
    return this.flags['dry-run'] === true;
  }

  async run(): Promise<unknown> {
    const f = this.flags;
    const backends = reportingBackends((l) => this.note(l));
    const base = await this.loadConfig('all');
    // The store must be there, unless a copy can stand in for it (chooseStore then says which store is used).
    if (Object.keys(base.copies).length === 0) await requireStoreFolder(base.store, base.file);
    const resume = f.resume ? await this.killedRestore(base.restore.stagingDir) : undefined;
    const targets = resume?.targets ?? Object.fromEntries((f.target ?? []).map(parseTargetFlag));
    const config = await withOverrides(base, {
      targets,
      gatewayUrl: f['gateway-url'],
      dashboardUrl: f['dashboard-url'],
    }, backends);
    const plan = await loadPlan(resume?.plan ?? f.plan);
    const before = parseTimeFlag('--before', f.before);
    // A resumed restore is the same restore: its RTO and RPO count from the killed run's incident time.
    const incidentAt = parseTimeFlag('--incident-at', f['incident-at']) ?? (resume?.incident_at ? new Date(resume.incident_at) : undefined);
    const chosen = await chooseStore(config, backends.openStore, {
      preferred: f.store,
      fallback: !f['no-fallback'],
      snapshot: resume?.snapshot ?? f.snapshot,
      note: (l) => this.note(l),
    });
    const selection = this.selection(resume);
    const common = {
      config,
      backends,
      store: chosen.store,
      storeFallback: chosen.skipped,
      plan,
      snapshot: resume?.snapshot ?? f.snapshot,
      before,
      incidentAt,
      identityFile: f.identity,
      filesTo: resume?.files_to ?? f.to,
      targetOverrides: targets,
      allowPartial: f['allow-partial'],
      resume,
      ticket: f.ticket,
      selection,
    };
    if (resume?.to_time && !selection) {
      throw badInput(
        `the killed restore ${resume.restore_id} was a point-in-time restore to ${resume.to_time}: replaying the feed again over a partly replayed keyspace would apply some commands twice`,
        `run it again from the start: tykdr restore --plan redis --to-time ${resume.to_time} --yes (it restores the base whole, then replays)`,
      );
    }
    const toTime = resume?.to_time ? new Date(resume.to_time) : parseTimeFlag('--to-time', f['to-time']);
    if (toTime && f['dry-run'] && selection) {
      const { summary, preview } = await previewRedisToTime({ ...common, at: toTime, progress: { note: (l) => this.note(l) } });
      if (!this.jsonEnabled()) {
        this.log(`Selective point-in-time restore of ${summary.component} to ${summary.asked}: base snapshot ${summary.base_snapshot} and ${summary.segments} segment(s) of chain ${summary.chain}, reaching ${summary.reached}${summary.short_by ? ` (short: ${summary.short_by})` : ''}`);
        printDryRun(preview, (l) => this.log(l));
      }
      return { dry_run: true, point_in_time: summary, ...preview };
    }
    if (toTime && f['dry-run']) {
      const { summary } = await planRedisToTime({ ...common, at: toTime });
      if (!this.jsonEnabled()) {
        this.log(`Point-in-time restore of ${summary.component} to ${summary.asked}: base snapshot ${summary.base_snapshot}, then ${summary.segments} segment(s) of chain ${summary.chain}`);
        this.log(`  reaches ${summary.reached} (replication offset ${summary.reached_offset})${summary.short_by ? `: short of the time asked: ${summary.short_by}` : ''}`);
      }
      return { dry_run: true, point_in_time: summary };
    }
    if (f['dry-run']) {
      const summary = await planRestore(common);
      summary.expected = await lastMeasuredDuration(config.restore.reportDir, plan.name);
      if (!this.jsonEnabled()) printDryRun(summary, (l) => this.log(l));
      return { dry_run: true, ...summary };
    }
    const interrupt = interruptSignal();
    const interactive = process.stdin.isTTY === true && !this.jsonEnabled();
    try {
      const run = toTime ? (o: Parameters<typeof runRestore>[0]) => restoreRedisToTime({ ...o, at: toTime }) : runRestore;
      const { report, failureKind } = await run({
        ...common,
        // A resumed restore was confirmed when it started.
        yes: f.yes || resume !== undefined,
        confirm: interactive ? (q) => ask(q) : undefined,
        signal: interrupt.signal,
        progress: this.jsonEnabled() ? undefined : restorePrinter((l) => this.note(l)),
      });
      const saved = await saveReport(report, config.restore.reportDir, chosen.store, undefined, config.signing);
      if (!this.jsonEnabled()) printReportSummary(report, saved, (l) => this.log(l));
      if (failureKind) process.exitCode = new TykdrError(failureKind, '').exitCode;
      return { store: chosen.name, ...(chosen.skipped.length ? { store_fallback: chosen.skipped } : {}), report, report_files: saved.files, stored_report: saved.stored, ...(saved.signatureError ? { report_signature_error: saved.signatureError } : {}) };
    } finally {
      interrupt.dispose();
    }
  }

  /** --key/--class/--org/--api/--[no-]overwrite as a selection; a resumed restore keeps the one it started with. */
  private selection(resume: JournalEntry | undefined): KeySelection | undefined {
    const f = this.flags;
    const filters = (f.key?.length ?? 0) + (f.class?.length ?? 0) + (f.org?.length ?? 0) + (f.api?.length ?? 0);
    if (resume) {
      if (filters > 0 || f.overwrite !== undefined) throw badInput('--resume restores the keys the killed restore selected: --key, --class, --org, --api and --[no-]overwrite do not go with it', 'drop them, or start a new restore instead of --resume');
      return resume.selection;
    }
    // --overwrite without a filter is the ordinary restore.
    if (filters === 0 && f.overwrite !== false) return undefined;
    return checkSelection({ patterns: f.key ?? [], classes: (f.class ?? []) as KeyClass[], orgs: f.org ?? [], apis: f.api ?? [], overwrite: f.overwrite === true });
  }

  /** The newest killed restore on this host, or bad input naming where tykdr looked. */
  private async killedRestore(stagingDir: string | undefined): Promise<JournalEntry> {
    const killed = await killedRestores(stagingDir);
    if (killed.length === 0) {
      throw badInput(`no killed restore to resume: ${journalDir(stagingDir)} holds no journal of a restore that stopped early on this host`, 'start a restore with --plan (and --snapshot)');
    }
    this.note(`resuming: ${describeKilled(killed[0]!)}`);
    if (killed.length > 1) this.note(`${killed.length - 1} older killed restore(s) are left as they are; the newest one is resumed`);
    return killed[0]!;
  }
}

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`${question} Type "yes" to continue: `)).trim().toLowerCase() === 'yes';
  } finally {
    rl.close();
  }
}
