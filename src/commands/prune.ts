import { Flags } from '@oclif/core';
import { openReportingStore } from '../cli/store-events.js';
import { namedStore, PRIMARY } from '../core/copies/named-stores.js';
import { EXIT_CODES_HELP, TykdrCommand, requireStoreFolder, interruptSignal } from '../cli/base-command.js';
import { formatBytes } from '../core/duration.js';
import { snapshotStatus } from '../core/catalog.js';
import { storeError } from '../core/errors.js';
import { pruneSnapshots, type PruneEntry, type PruneResult, type UnfinishedEntry } from '../core/retention/prune.js';

export default class Prune extends TykdrCommand<typeof Prune> {
  static override summary = 'Remove snapshots the retention policy no longer keeps (a dry run unless --confirm).';
  static override description = `Applies the retention section of tykdr.yaml, restic-style: keepLast, then the newest snapshot in each of the last N hours, days, ISO weeks, months and years (UTC) that have one, and keepWithin. Only complete snapshots count, ordered by manifest time. Always kept: the newest complete snapshot of each component, the newest snapshot that passed a drill, and the base snapshot of every point-in-time chain (streams/; chains themselves are not pruned). Incomplete snapshots are removed once older than incompleteGrace; a snapshot whose manifest is damaged (kept as evidence) or in a newer format (the newer tykdr's to prune) is kept.

Without --confirm nothing is deleted: prune lists what would go and why (--verbose also lists what stays and why). With --confirm, each snapshot's manifest is deleted first (so an interrupted prune leaves an incomplete snapshot, never a complete-looking one with holes), then its objects and its stored reports.

Restore and drill reports (and their signatures) younger than evidence.keepWithin (default 400d) are evidence: they are never deleted, whatever happens to their snapshot. Reports of snapshots already gone are removed once older than that.

With S3 Object Lock, locked objects cannot be deleted: they are skipped and reported with their retention date, never counted as freed, and do not make prune fail. A snapshot whose manifest is locked is kept whole.

Writes that never finished are swept too: S3 multipart uploads under the store prefix that were never completed or aborted, and ".partial-" files in a local store, as a crash or SIGKILL leaves them. Those older than incompleteGrace are listed (dry run) or removed (--confirm); younger ones may belong to a backup running now and are left alone (--verbose lists them).

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> prune',
    '<%= config.bin %> prune --verbose',
    '<%= config.bin %> prune --confirm',
    '<%= config.bin %> prune --confirm --json',
    '<%= config.bin %> prune --store offsite --confirm',
  ];

  static override flags = {
    confirm: Flags.boolean({ summary: 'Delete for real (default: a dry run).' }),
    verbose: Flags.boolean({ char: 'v', summary: 'Also list the snapshots that stay, and why.' }),
    store: Flags.string({ summary: 'Prune this store: "primary" (the store section, the default) or a name under copies: (with its own retention when it sets one).' }),
  };

  async run(): Promise<unknown> {
    // The retention settings too: one read as its default because its variable is unset could delete more.
    const config = await this.loadConfig('retention');
    const named = namedStore(config, this.flags.store ?? PRIMARY);
    await requireStoreFolder(named.cfg, config.file);
    const store = openReportingStore(named.cfg, (l) => this.note(l));
    const interrupt = interruptSignal();
    let result: PruneResult;
    try {
      result = await pruneSnapshots({
        store,
        policy: named.copy?.retention ?? config.retention,
        evidence: config.evidence,
        confirm: this.flags.confirm,
        signal: interrupt.signal,
        progress: { removing: (id) => this.note(`removing ${id}...`) },
      });
    } finally {
      interrupt.dispose();
    }
    if (!this.jsonEnabled()) this.print(result);
    if (result.totals.failed > 0) {
      const first = result.snapshots.find((e) => e.removal?.status === 'failed')!;
      const err = storeError(`${result.totals.failed} snapshot(s) could not be removed; first: ${first.id}: ${first.removal!.error}`);
      process.exitCode = err.exitCode;
    }
    const u = result.unfinished;
    if (u.error !== undefined || u.totals.failed > 0) {
      const first = u.entries.find((e) => e.action === 'failed');
      this.note(`Error: ${u.error ?? `${u.totals.failed} unfinished upload(s) could not be removed; first: ${first!.key}: ${first!.error}`}`);
      if (u.fix) this.note(`Fix: ${u.fix}`);
      process.exitCode = storeError('').exitCode;
    }
    return toJson(result);
  }

  private print(r: PruneResult): void {
    if (r.dryRun) this.log(`Dry run: nothing is deleted (add --confirm to delete). Store: ${r.location}`);
    else this.log(`Store: ${r.location}`);
    for (const e of r.snapshots) {
      // A snapshot kept though not complete (its manifest damaged, or in a newer format) is always shown: it needs a person.
      if (e.keep && !this.flags.verbose && (e.damaged || e.newerFormat) !== true) continue;
      const what = `${snapshotStatus(e).padEnd(12)}  ${formatBytes(e.storedBytes).padStart(9)}`;
      this.log(`${label(e).padEnd(14)} ${e.id}  ${what}  ${e.reasons.join('; ')}`);
      for (const l of e.removal?.locked ?? []) {
        this.log(`${''.padEnd(14)}   ${l.key} is ${l.detail}${e.removal!.status === 'would-remove' ? ': it will be skipped' : ''}`);
      }
      if (e.removal?.error) this.log(`${''.padEnd(14)}   ${e.removal.error}`);
      if (e.removal?.evidenceKept) this.log(`${''.padEnd(14)}   ${e.removal.evidenceKept} report file(s) kept as evidence (younger than evidence.keepWithin)`);
    }
    const o = r.orphanReports;
    if (o.removed > 0) this.log(`${r.dryRun ? 'Would remove' : 'Removed'} ${o.removed} report file(s) of snapshots already gone, older than evidence.keepWithin (${formatBytes(o.bytes)}).`);
    if (o.kept > 0) this.log(`Keeping ${o.kept} report file(s) of snapshots already gone as evidence (younger than evidence.keepWithin).`);
    if (o.error) this.log(`Could not sweep old reports: ${o.error}`);
    const t = r.totals;
    const kept = `keeping ${t.kept} snapshot(s)`;
    this.printUnfinished(r);
    if (r.dryRun) {
      this.log(
        t.toRemove === 0
          ? `Nothing to remove; ${kept}.`
          : `Would remove ${t.toRemove} snapshot(s) (${t.objects} objects, ${formatBytes(t.bytes)}); ${kept}.`,
      );
      return;
    }
    const parts = [`Removed ${t.removed} snapshot(s): ${t.objects} objects deleted, ${formatBytes(t.bytes)} freed`];
    if (t.locked > 0) parts.push(`${t.locked} locked (skipped until their retention ends)`);
    if (t.failed > 0) parts.push(`${t.failed} failed`);
    this.log(`${parts.join('; ')}; ${kept}.`);
  }

  /** Unfinished uploads: the stale ones always, the young ones with --verbose. */
  private printUnfinished(r: PruneResult): void {
    const u = r.unfinished;
    if (u.error !== undefined) return; // reported as an error on stderr
    const shown = u.entries.filter((e) => e.stale || this.flags.verbose);
    for (const e of shown) {
      const size = e.bytes === undefined ? '' : `  ${formatBytes(e.bytes)}`;
      this.log(`${unfinishedLabel(e).padEnd(14)} unfinished upload of ${e.key} (${e.id}), since ${e.since.toISOString()}${size}${e.error ? `: ${e.error}` : ''}`);
    }
    if (u.totals.stale === 0) {
      if (shown.length > 0 || this.flags.verbose) this.log(`No unfinished upload older than ${u.grace}.`);
      return;
    }
    const bytes = u.totals.bytes > 0 ? ` (${formatBytes(u.totals.bytes)})` : '';
    if (r.dryRun) this.log(`Would remove ${u.totals.stale} unfinished upload(s) older than ${u.grace}${bytes}.`);
    else this.log(`Removed ${u.totals.removed} unfinished upload(s) older than ${u.grace}${bytes}${u.totals.failed ? `; ${u.totals.failed} failed` : ''}.`);
  }
}

function label(e: PruneEntry): string {
  switch (e.removal?.status) {
    case undefined:
      return 'keep';
    case 'would-remove':
      return 'would remove';
    case 'removed':
      return 'removed';
    case 'locked':
      return e.complete ? 'LOCKED (kept)' : 'LOCKED';
    case 'partly-removed':
      return 'PART LOCKED';
    case 'failed':
      return 'FAILED';
  }
}

function unfinishedLabel(e: UnfinishedEntry): string {
  switch (e.action) {
    case undefined:
      return 'keep (young)';
    case 'would-remove':
      return 'would remove';
    case 'removed':
      return 'removed';
    case 'missing':
      return 'gone';
    case 'failed':
      return 'FAILED';
  }
}

function toJson(r: PruneResult) {
  return {
    dry_run: r.dryRun,
    location: r.location,
    totals: r.totals,
    unfinished_uploads: {
      grace: r.unfinished.grace,
      ...(r.unfinished.error === undefined ? {} : { error: r.unfinished.error }),
      totals: r.unfinished.totals,
      uploads: r.unfinished.entries.map((e) => ({
        key: e.key,
        id: e.id,
        since: e.since.toISOString(),
        bytes: e.bytes ?? null,
        stale: e.stale,
        action: e.action ?? 'keep',
        ...(e.error === undefined ? {} : { error: e.error }),
      })),
    },
    orphan_reports: r.orphanReports,
    snapshots: r.snapshots.map((e) => ({
      id: e.id,
      complete: e.complete,
      ...(e.damaged ? { manifest_state: 'damaged' } : e.newerFormat ? { manifest_state: 'newer-format' } : {}),
      created_at: e.createdAt.toISOString(),
      components: e.components,
      objects: e.objects,
      stored_bytes: e.storedBytes,
      keep: e.keep,
      reasons: e.reasons,
      ...(e.removal
        ? {
            removal: {
              ...e.removal,
              locked: e.removal.locked.map((l) => ({ key: l.key, mode: l.lock.mode, until: l.lock.until?.toISOString() ?? null, detail: l.detail })),
            },
          }
        : {}),
    })),
  };
}
