import type { RestoreReport } from '../restore/types.js';

export { renderHtml } from './render-html.js';
export { TIMELINE, timelineX } from './timeline-svg.js';
export { timelineScale } from './timeline-scale.js';
export { renderJson } from './render-json.js';
export { renderMarkdown } from './render-markdown.js';

/**
 * File names for one run's reports: `<kind>-<id>.json|md|html`, e.g. `drill-20261121T093012Z-4f9a1c.html`.
 * The id is written by tykdr, but a report read back from a store is data: anything outside
 * [A-Za-z0-9._-] becomes "_", so a name never holds a path separator and stays in the report folder.
 */
export function reportFileNames(r: RestoreReport): { json: string; markdown: string; html: string } {
  const kind = r.kind === 'drill' ? 'drill' : 'restore';
  const id = r.id.replace(/[^A-Za-z0-9._-]/g, '_') || 'unnamed';
  const base = `${kind}-${id}`;
  return { json: `${base}.json`, markdown: `${base}.md`, html: `${base}.html` };
}
