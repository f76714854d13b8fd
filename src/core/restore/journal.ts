import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { processAlive } from './work-dirs.js';
import { describeSelection, type KeySelection } from '../tyk/key-selection.js';
import { makeDir } from '../util/make-dir.js';

/**
 * The restore journal: one small JSON file per running restore, in `<stagingDir>/tykdr-journal/`, rewritten
 * (atomically) at every phase and step. A restore that finishes removes its journal; one that is killed leaves
 * it behind, so the next `tykdr restore` can say which targets may be partial and `--resume` can finish it.
 * It holds names, ids and addresses only: never a secret or a key name.
 */
export interface JournalEntry {
  format: 'tykdr-restore-journal/1';
  restore_id: string;
  pid: number;
  host: string;
  started_at: string;
  /** When the incident began (--incident-at, else the start): a resume measures RTO and RPO from it too. */
  incident_at?: string;
  updated_at: string;
  /** The plan as given (a name or a file) and the snapshot id: what --resume runs again. */
  plan: string;
  snapshot: string;
  files_to?: string;
  /** --target overrides, component -> host:port. */
  targets?: Record<string, { host: string; port: number }>;
  /** A selective restore's filter: --resume restores the same keys (and never the whole keyspace). */
  selection?: KeySelection;
  /** restore --to-time: the time asked (the snapshot is the chain's base); --resume restores to the same time. */
  to_time?: string;
  /** Where each member goes, for people ("redis 10.0.0.5:6379"). */
  target_descriptions: string[];
  phase: 'staging' | 'restoring';
  /** Plan steps by id: started (may be partial), ok, failed or skipped. */
  steps: Record<string, 'started' | 'ok' | 'failed' | 'skipped'>;
}

export function journalDir(stagingDir: string | undefined): string {
  return path.join(stagingDir ?? tmpdir(), 'tykdr-journal');
}

export class Journal {
  private constructor(
    private readonly file: string,
    readonly entry: JournalEntry,
  ) {}

  static async create(stagingDir: string | undefined, entry: Omit<JournalEntry, 'format' | 'pid' | 'host' | 'updated_at' | 'phase' | 'steps'>): Promise<Journal> {
    const dir = journalDir(stagingDir);
    await makeDir(dir, 0o700);
    const j = new Journal(path.join(dir, `${entry.restore_id}.json`), {
      format: 'tykdr-restore-journal/1',
      pid: process.pid,
      host: hostname(),
      updated_at: entry.started_at,
      phase: 'staging',
      steps: {},
      ...entry,
    });
    await j.save();
    return j;
  }

  async phase(phase: JournalEntry['phase']): Promise<void> {
    this.entry.phase = phase;
    await this.save();
  }

  async step(id: string, status: JournalEntry['steps'][string]): Promise<void> {
    this.entry.steps[id] = status;
    await this.save();
  }

  /** The restore ended (either way): its report says what happened, so the journal goes. */
  async close(): Promise<void> {
    await rm(this.file, { force: true });
  }

  private async save(): Promise<void> {
    this.entry.updated_at = new Date().toISOString();
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify(this.entry, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

/** Journals of restores on this host whose process is gone: each may have left its targets partial. Newest first. */
export async function killedRestores(stagingDir: string | undefined): Promise<JournalEntry[]> {
  const dir = journalDir(stagingDir);
  const out: JournalEntry[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    try {
      const e = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as JournalEntry;
      if (e.format !== 'tykdr-restore-journal/1' || e.host !== hostname() || e.pid === process.pid || processAlive(e.pid)) continue;
      out.push(e);
    } catch {
      // a half-written journal (killed while saving) was never the current one: the .tmp is left, the old file kept
    }
  }
  return out.sort((a, b) => b.started_at.localeCompare(a.started_at));
}

/** Forgets a killed restore (after it was resumed, or superseded by a restore that succeeded). */
export async function forgetRestore(stagingDir: string | undefined, restoreId: string): Promise<void> {
  await rm(path.join(journalDir(stagingDir), `${restoreId}.json`), { force: true });
}

/** One line for people: what was killed, where, and how far it got. */
export function describeKilled(e: JournalEntry): string {
  const started = Object.entries(e.steps).filter(([, s]) => s === 'started').map(([id]) => id);
  const done = Object.entries(e.steps).filter(([, s]) => s === 'ok').map(([id]) => id);
  const where = e.phase === 'staging' ? 'while staging (no target was touched)' : started.length ? `during step ${started.join(', ')}` : 'between steps';
  return (
    `restore ${e.restore_id} of snapshot ${e.snapshot} (plan ${e.plan}${e.to_time ? `, to time ${e.to_time}` : ''}${e.selection ? `, selective: ${describeSelection(e.selection)}` : ''}, started ${e.started_at}) was killed ${where}` +
    `${done.length ? `; steps done: ${done.join(', ')}` : ''}${e.phase === 'restoring' ? `; targets may be partial: ${e.target_descriptions.join('; ')}` : ''}`
  );
}
