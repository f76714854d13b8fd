import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '../interfaces/store.js';
import { TOOL_VERSION } from '../version.js';
import { renderHistoryHtml, renderHistoryMarkdown } from './history-render.js';
import { listDrills, type DrillRecord } from './history.js';

export interface DrillHistoryOptions {
  store: Store;
  plan?: string;
  /** Files to write; either may be left out. */
  html?: string;
  markdown?: string;
  /** Local report folders (drill.reportDir, restore.reportDir) searched for each drill's own HTML report. */
  reportDirs: string[];
  /** The folder of a local store, whose reports/<snapshot>/ copies are linked when no local one exists. */
  localStorePath?: string;
  signal?: AbortSignal;
}

export interface DrillHistory {
  drills: DrillRecord[];
  files: { html?: string; markdown?: string };
}

const exists = (f: string): Promise<boolean> => access(f).then(() => true, () => false);

/** A relative URL from `fromDir` to `file`, each path segment percent-encoded. */
function href(fromDir: string, file: string): string {
  return path.relative(fromDir, file).split(path.sep).map(encodeURIComponent).join('/');
}

/** Where each drill's HTML report can be opened from `outDir`: a local report folder first, then a local store. */
async function reportLinks(drills: DrillRecord[], o: DrillHistoryOptions, outDir: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  for (const d of drills) {
    const candidates = [...o.reportDirs.map((dir) => path.join(dir, path.basename(d.reportKey))),
      ...(o.localStorePath ? [path.join(o.localStorePath, ...d.reportKey.split('/'))] : [])];
    for (const c of candidates) {
      if (await exists(c)) {
        links.set(d.id, href(outDir, path.resolve(c)));
        break;
      }
    }
  }
  return links;
}

/**
 * Lists the drills recorded in the store (listDrills) and writes the history report as HTML and/or
 * Markdown. Reads the store and local report folders; writes only the files it is given.
 */
export async function writeDrillHistory(o: DrillHistoryOptions): Promise<DrillHistory> {
  const drills = await listDrills(o.store, { plan: o.plan, signal: o.signal });
  const files: DrillHistory['files'] = {};
  const generatedAt = new Date();
  for (const [kind, file] of [['html', o.html], ['markdown', o.markdown]] as const) {
    if (file === undefined) continue;
    const abs = path.resolve(file);
    const links = await reportLinks(drills, o, path.dirname(abs));
    const pageData = { drills, location: o.store.location, links, generatedAt, plan: o.plan, toolVersion: TOOL_VERSION };
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, kind === 'html' ? renderHistoryHtml(pageData) : renderHistoryMarkdown(pageData));
    files[kind] = abs;
  }
  return { drills, files };
}
