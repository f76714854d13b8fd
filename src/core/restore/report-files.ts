import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Store } from '../interfaces/store.js';
import { renderHtml, renderJson, renderMarkdown, reportFileNames } from '../report/index.js';
import { loadSigner } from '../signing/keys.js';
import type { RestoreReport } from './types.js';
import { makeDir } from '../util/make-dir.js';

export interface SavedReport {
  /** Local files; `signature` (the JSON's name + ".sig") when signing.keyFile is set. */
  files: { json: string; markdown: string; html: string; signature?: string };
  /** Keys in the store (reports/<snapshot-id>/...), or the error that kept them out. */
  stored: string[] | { error: string };
  /** Why the report could not be signed although signing.keyFile is set (the report itself was still written). */
  signatureError?: string;
}

/** Store key of a report object: next to the snapshot it restored, never inside its folder. */
export const reportKey = (snapshotId: string, name: string) => `reports/${snapshotId}/${name}`;

/**
 * Writes the report as JSON, Markdown and HTML into the local report folder and next to the snapshot in
 * the store. A store failure does not lose the report: it is recorded and the local copies remain.
 */
export async function saveReport(
  report: RestoreReport,
  dir: string,
  store: Store,
  signal?: AbortSignal,
  signing?: { keyFile?: string },
): Promise<SavedReport> {
  const names = reportFileNames(report);
  const bodies = { json: renderJson(report), markdown: renderMarkdown(report), html: renderHtml(report) };
  // The signature is over the JSON's exact bytes: the JSON is the record, Markdown and HTML are views of it.
  let signature: Buffer | undefined;
  let signatureError: string | undefined;
  if (signing?.keyFile !== undefined) {
    try {
      signature = (await loadSigner(signing.keyFile)).sign(Buffer.from(bodies.json));
    } catch (err) {
      signatureError = (err as Error).message;
    }
  }
  await makeDir(dir);
  const files: SavedReport['files'] = {
    json: path.join(dir, names.json),
    markdown: path.join(dir, names.markdown),
    html: path.join(dir, names.html),
  };
  if (signature) files.signature = `${files.json}.sig`;
  // The files, then the store's objects, each set at once (a store's put is a round trip or an fsync: after the
  // last step, every one of them is time the restore's command takes).
  await Promise.all([
    ...(['json', 'markdown', 'html'] as const).map((k) => writeFile(files[k], bodies[k])),
    ...(signature ? [writeFile(files.signature!, signature)] : []),
  ]);
  const extra = signatureError === undefined ? {} : { signatureError };
  try {
    const stored: string[] = [];
    const objects: Array<[string, Buffer, string]> = [
      [names.json, Buffer.from(bodies.json), 'application/json'],
      ...(signature ? [[`${names.json}.sig`, signature, 'application/octet-stream'] as [string, Buffer, string]] : []),
      [names.markdown, Buffer.from(bodies.markdown), 'text/markdown'],
      [names.html, Buffer.from(bodies.html), 'text/html'],
    ];
    const puts = await Promise.allSettled(
      objects.map(async ([name, body, contentType]) => {
        const key = reportKey(report.snapshot.id, name);
        await store.put(key, Readable.from([body]), { signal, contentType });
        return key;
      }),
    );
    for (const p of puts) {
      if (p.status === 'rejected') throw p.reason;
      stored.push(p.value);
    }
    return { files, stored, ...extra };
  } catch (err) {
    return { files, stored: { error: (err as Error).message }, ...extra };
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
