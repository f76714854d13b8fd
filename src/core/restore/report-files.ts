import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Store } from '../interfaces/store.js';
import { renderHtml, renderJson, renderMarkdown, reportFileNames } from '../report/index.js';
import type { RestoreReport } from './types.js';

export interface SavedReport {
  /** Local files. */
  files: { json: string; markdown: string; html: string };
  /** Keys in the store (reports/<snapshot-id>/...), or the error that kept them out. */
  stored: string[] | { error: string };
}

/** Store key of a report object: next to the snapshot it restored, never inside its folder. */
export const reportKey = (snapshotId: string, name: string) => `reports/${snapshotId}/${name}`;

/**
 * Writes the report as JSON, Markdown and HTML into the local report folder and next to the snapshot in
 * the store. A store failure does not lose the report: it is recorded and the local copies remain.
 */
export async function saveReport(report: RestoreReport, dir: string, store: Store, signal?: AbortSignal): Promise<SavedReport> {
  const names = reportFileNames(report);
  const bodies = { json: renderJson(report), markdown: renderMarkdown(report), html: renderHtml(report) };
  await mkdir(dir, { recursive: true });
  const files = {
    json: path.join(dir, names.json),
    markdown: path.join(dir, names.markdown),
    html: path.join(dir, names.html),
  };
  for (const k of ['json', 'markdown', 'html'] as const) await writeFile(files[k], bodies[k]);
  try {
    const stored: string[] = [];
    for (const k of ['json', 'markdown', 'html'] as const) {
      const key = reportKey(report.snapshot.id, names[k]);
      await store.put(key, Readable.from([Buffer.from(bodies[k])]), { signal, contentType: k === 'html' ? 'text/html' : k === 'json' ? 'application/json' : 'text/markdown' });
      stored.push(key);
    }
    return { files, stored };
  } catch (err) {
    return { files, stored: { error: (err as Error).message } };
  }
}

/** The duration of the newest succeeded run of a plan, from the local report folder. */
export async function lastMeasuredDuration(dir: string, plan: string): Promise<{ seconds: number; from: string } | null> {
  const names = await readdir(dir).catch(() => [] as string[]);
  // Newest first by the run id (time-sortable), whatever the kind prefix.
  const runId = (n: string) => n.replace(/^(restore|drill)-/, '');
  const reports = names.filter((x) => /^(restore|drill)-.*\.json$/.test(x)).sort((a, b) => (runId(a) < runId(b) ? 1 : -1));
  for (const n of reports) {
    try {
      const r = JSON.parse(await readFile(path.join(dir, n), 'utf8')) as RestoreReport;
      if (r.plan?.name === plan && r.status === 'succeeded' && !r.dry_run) {
        return { seconds: (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000, from: `${r.kind} ${r.id}` };
      }
    } catch {
      // an unreadable report is no measurement
    }
  }
  return null;
}
