/**
 * A minimal Prometheus registry, text exposition format 0.0.4, written by hand: families with HELP and
 * TYPE lines, samples keyed by their label set. Values are numbers; NaN never appears (unset samples
 * are simply absent).
 */

export type MetricType = 'counter' | 'gauge';
export type Labels = Record<string, string>;

interface Family {
  type: MetricType;
  help: string;
  samples: Map<string, { labels: Labels; value: number }>;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Metrics {
  readonly #families = new Map<string, Family>();
  readonly #collectors: Array<(m: Metrics) => void> = [];

  /** Declares a family (idempotent): declared families print HELP/TYPE even before their first sample. */
  define(name: string, type: MetricType, help: string): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    if (!this.#families.has(name)) this.#families.set(name, { type, help, samples: new Map() });
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.#sample(name, labels);
    s.value += by;
  }

  set(name: string, labels: Labels, value: number): void {
    this.#sample(name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number | undefined {
    return this.#families.get(name)?.samples.get(key(labels))?.value;
  }

  /** Runs before every render: for gauges computed from state (e.g. per component). */
  collect(fn: (m: Metrics) => void): void {
    this.#collectors.push(fn);
  }

  render(): string {
    for (const c of this.#collectors) c(this);
    const lines: string[] = [];
    for (const [name, f] of [...this.#families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      lines.push(`# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      lines.push(`# TYPE ${name} ${f.type}`);
      for (const [, s] of [...f.samples].sort(([a], [b]) => (a < b ? -1 : 1))) {
        lines.push(`${name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  #sample(name: string, labels: Labels) {
    const f = this.#families.get(name);
    if (!f) throw new Error(`metric ${name} is not defined`);
    const k = key(labels);
    let s = f.samples.get(k);
    if (!s) {
      s = { labels, value: 0 };
      f.samples.set(k, s);
    }
    return s;
  }
}

function key(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
