import { formatBytes, formatDuration } from '../core/duration.js';
import type { SavedReport } from '../core/restore/report-files.js';
import type { DryRunSummary, RestoreProgress } from '../core/restore/restore.js';
import type { RestoreReport } from '../core/restore/types.js';

const MARK = { ok: 'ok', failed: 'FAILED', skipped: 'skipped', passed: 'pass' } as const;

/** Per-step progress on stderr: a line when a step starts, its checks, and how it ended. */
export function restorePrinter(write: (line: string) => void): RestoreProgress {
  return {
    note: (l) => write(l),
    stepStarted: (s, i, n) => write(`[${i + 1}/${n}] ${s.id}: ${s.action} ${s.component}`),
    stepDone: (r) => {
      for (const c of r.checks) write(`    ${(MARK[c.status] ?? c.status).padEnd(7)} ${c.name}: ${c.detail}`);
      write(`  ${r.id}: ${MARK[r.status]} in ${formatDuration(r.durationMs)}${r.reason ? ` (${r.reason})` : ''}`);
    },
  };
}

export function printDryRun(s: DryRunSummary, log: (l: string) => void): void {
  log(`DRY RUN: nothing will be changed.`);
  log(`Snapshot ${s.snapshot.id} (created ${s.snapshot.created_at}) from ${s.snapshot.location}, plan ${s.plan}`);
  log(`Manifest: ${s.manifest_signature}`);
  log('Objects (downloaded, checked and decrypted into the staging folder before any target is touched):');
  for (const o of s.objects) log(`  ${o.component}: ${o.name}, ${formatBytes(o.stored_bytes)} stored, ${formatBytes(o.plaintext_bytes)} plaintext`);
  if (s.objects.length === 0) log('  (none: the plan restores nothing from this snapshot)');
  log('Steps:');
  s.steps.forEach((st, i) => {
    const what = st.action === 'restore' ? (st.members.length ? `restore ${st.members.join(', ')}` : 'nothing to restore (skipped unless configured)') : st.action;
    log(`  ${i + 1}. ${st.id} (${st.component}): ${what}; verify ${st.verify.join(', ')}`);
  });
  log('Targets:');
  const keeps = (s.selection ?? []).some((p) => (p.selection.filter as { overwrite?: boolean } | undefined)?.overwrite === false);
  const onLive = keeps ? 'a selective restore writes only the selected keys and keeps those it holds' : 'a restore asks before overwriting it';
  for (const t of s.targets) log(`  ${t.component}: ${t.target}: ${t.liveData ? `has live data (${t.liveData}); ${onLive}` : 'empty'}`);
  for (const t of s.targets) if (t.warning) log(`  warning: ${t.warning}`);
  for (const p of s.selection ?? []) printSelection(p.component, p.selection, log);
  for (const k of s.killed_restores) log(`PARTIAL: ${k}`);
  log(
    s.expected
      ? `Expected duration: about ${formatDuration(s.expected.seconds * 1000)} (measured by ${s.expected.from})`
      : 'Expected duration: unknown (no earlier restore of this plan measured here)',
  );
}

export function printReportSummary(r: RestoreReport, saved: SavedReport, log: (l: string) => void): void {
  log('');
  const what = r.kind === 'drill' ? 'DR drill' : 'Restore';
  const headline = r.status === 'succeeded' ? 'SUCCEEDED' : r.verdict.missed.length > 0 && r.steps.every((s) => s.status !== 'failed') ? 'FAILED: OBJECTIVE MISSED' : 'FAILED';
  log(`${what} ${headline}: snapshot ${r.snapshot.id}, plan ${r.plan.name}`);
  if (r.snapshot.picked) log(`  Snapshot ${r.snapshot.id} (created ${r.snapshot.created_at}): ${r.snapshot.picked}`);
  if (r.gateway) log(`  ${r.gateway.proven ? 'GATEWAY PROVEN' : 'GATEWAY NOT PROVEN'}: ${r.gateway.summary.replace(/^gateway (not )?proven: /, '')}${r.gateway.log ? ` (gateway log: ${r.gateway.log})` : ''}`);
  for (const s of r.steps) if (s.status === 'failed') log(`  FAILED ${s.id}: ${s.reason ?? 'see the report'}`);
  for (const m of r.verdict.missed) log(`  MISSED ${m}`);
  if (r.verdict.not_proven.length > 0) log(`  NOT PROVEN (checks skipped): ${r.verdict.not_proven.join(', ')}`);
  for (const w of r.warnings) log(`  WARNING: ${w}`);
  const rto = r.rto;
  log(
    `  RTO ${rto.achievedSeconds === null ? 'not achieved' : formatDuration(rto.achievedSeconds * 1000)} ` +
      `against ${formatDuration(rto.objectiveSeconds * 1000)} (${rto.tier}): ${rto.met ? 'MET' : 'MISSED'}`,
  );
  if (rto.service_restored_seconds != null) log(`  Service restored (first request served) after ${formatDuration(rto.service_restored_seconds * 1000)}; all checks done after ${rto.achievedSeconds === null ? '-' : formatDuration(rto.achievedSeconds * 1000)}`);
  for (const [name, o] of Object.entries(r.rpo)) {
    log(`  RPO ${name}: ${formatDuration((o.achievedSeconds ?? 0) * 1000)} against ${formatDuration(o.objectiveSeconds * 1000)} (${o.tier}): ${o.met ? 'MET' : 'MISSED'}`);
  }
  for (const s of r.steps) {
    for (const [name, d] of Object.entries(s.details)) {
      const sel = (d as { selection?: Record<string, unknown> } | null)?.selection;
      if (sel && typeof sel === 'object') printSelection(name, sel, (l) => log(`  ${l}`));
    }
  }
  if (r.evidence) log(`  Manifest: ${r.evidence.manifest_signature.detail}`);
  log(`  Report: ${saved.files.html}`);
  if (saved.files.signature) log(`  Report signature: ${saved.files.signature} (check it with \`tykdr report verify ${saved.files.json}\`)`);
  if (saved.signatureError) log(`  WARNING: the report could not be signed: ${saved.signatureError}`);
  if (!Array.isArray(saved.stored)) log(`  WARNING: the report could not be stored next to the snapshot: ${saved.stored.error}`);
}

const SHOWN = 20;

/** A selective restore's preview (dry run) or outcome: counts, and the first names of each list. */
export function printSelection(component: string, sel: Record<string, unknown>, log: (l: string) => void): void {
  const dry = sel.dry_run === true;
  const n = (k: string) => Number(sel[k] ?? 0);
  log(`Selection for ${component}: ${String(sel.description)}`);
  log(
    `  ${n('snapshot_keys')} keys in the snapshot, ${n('selected')} selected: ${dry ? 'would write' : 'written'} ${n(dry ? 'would_write' : 'written')}` +
      ` (${n(dry ? 'would_replace' : 'replaced')} replacing a key the target holds), kept ${n('kept')} (already in the target), expired ${n('expired')};` +
      ` skipped (not selected, never touched) ${n('skipped_not_selected')}`,
  );
  const list = (title: string, names: unknown, total: number) => {
    const arr = (names as string[] | undefined) ?? [];
    if (total === 0) return;
    log(`  ${title} (${total}):`);
    for (const name of arr.slice(0, SHOWN)) log(`    ${name}`);
    if (total > SHOWN) log(`    ... and ${total - SHOWN} more (--json lists them)`);
  };
  list(dry ? 'would write' : 'written', sel[dry ? 'would_write_keys' : 'written_keys'], n(dry ? 'would_write' : 'written'));
  list('kept (exists in the target; --overwrite replaces it)', sel.kept_keys, n('kept'));
}
