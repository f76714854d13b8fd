import type { Store } from '../core/interfaces/store.js';
import type { Config } from '../core/config/load.js';
import { readManifest } from '../core/catalog.js';
import { MANIFEST_NAME, parseKey, SNAPSHOTS_PREFIX } from '../core/layout.js';
import type { Manifest } from '../core/manifest.js';
import type { ComponentState } from './health.js';

/**
 * What the daemon knows about each configured component's backups: fed by the backups it runs and by
 * the store (the newest complete snapshot holding each component), so a restarted daemon, or a follower
 * that runs nothing, knows where things stand. Failures are known only to the daemon that saw them.
 */
export class BackupState {
  readonly #states = new Map<string, ComponentState>();
  /** Snapshot ids whose manifests were already read (or are older than what was found). */
  readonly #seen = new Set<string>();

  constructor(config: Config) {
    for (const [name, c] of Object.entries(config.components)) {
      this.#states.set(name, { name, tier: c.tier, rpoMs: config.tiers[c.tier].rpoMs, failuresTotal: 0 });
    }
  }

  all(): ComponentState[] {
    return [...this.#states.values()];
  }

  get(name: string): ComponentState | undefined {
    return this.#states.get(name);
  }

  started(components: string[], at: Date): void {
    for (const n of components) {
      const s = this.#states.get(n);
      if (s) s.runningSince = at;
    }
  }

  /** A run ended without a verdict (aborted by shutdown or lost leadership): not a failure. */
  ended(components: string[]): void {
    for (const n of components) {
      const s = this.#states.get(n);
      if (s) s.runningSince = undefined;
    }
  }

  failed(components: string[], message: string, at: Date): void {
    for (const n of components) {
      const s = this.#states.get(n);
      if (!s) continue;
      s.runningSince = undefined;
      s.lastOutcome = 'failure';
      s.lastFailureAt = at;
      s.lastError = message;
      s.failuresTotal += 1;
    }
  }

  /** Records a complete snapshot (one the daemon took, or one found in the store). */
  applyManifest(m: Manifest, opts: { ranHere?: boolean } = {}): void {
    this.#seen.add(m.id);
    const byComponent = new Map<string, Array<Manifest['components'][string]>>();
    for (const [artifactName, entry] of Object.entries(m.components)) {
      const name = entry.config_component ?? artifactName;
      byComponent.set(name, [...(byComponent.get(name) ?? []), entry]);
    }
    const completedAt = new Date(m.completed_at);
    for (const [name, entries] of byComponent) {
      const s = this.#states.get(name);
      if (!s) continue;
      if (opts.ranHere) s.runningSince = undefined;
      // The component's point in time is its earliest artifact's (the conservative one).
      const at = new Date(Math.min(...entries.map((e) => Date.parse(e.consistent_at))));
      if (s.lastSuccessAt && s.lastSuccessAt.getTime() >= at.getTime()) continue;
      s.lastSuccessAt = at;
      s.lastSnapshot = m.id;
      s.lastDurationSeconds = Math.max(...entries.map((e) => e.duration_ms)) / 1000;
      s.lastBytes = entries.reduce((n, e) => n + e.artifact.stored_bytes, 0);
      // A newer success (here, by a leader elsewhere, or by hand) heals an earlier failure.
      if (opts.ranHere || !s.lastFailureAt || completedAt.getTime() >= s.lastFailureAt.getTime()) s.lastOutcome = 'success';
    }
  }

  /**
   * Reads the manifests of complete snapshots it has not seen yet, newest id first, until each
   * component has been found and the second of the last one read is done (ids sort by their second, then a
   * random suffix; applyManifest keeps the newest). The first call reads the whole history only when a
   * component was never backed up; later calls usually read nothing or one manifest.
   */
  async refresh(store: Store, signal?: AbortSignal): Promise<{ read: number }> {
    const complete: string[] = [];
    for await (const o of store.list(SNAPSHOTS_PREFIX, { signal })) {
      const k = parseKey(o.key);
      if (k && k.name === MANIFEST_NAME && !this.#seen.has(k.id)) complete.push(k.id);
    }
    complete.sort().reverse();
    const found = new Set<string>();
    const unreadable = new Set<string>();
    let read = 0;
    let lastSecond = '';
    for (const id of complete) {
      // Ids sort by their second, then a random suffix: others of the second last read may still be newer.
      const second = id.slice(0, id.indexOf('-'));
      if (found.size === this.#states.size && second !== lastSecond) break;
      try {
        const m = await readManifest(store, id, signal);
        read++;
        lastSecond = second;
        this.applyManifest(m);
        for (const [a, e] of Object.entries(m.components)) {
          const name = e.config_component ?? a;
          if (this.#states.has(name)) found.add(name);
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        // Unreadable now (a store hiccup, or damaged: `tykdr verify` reports that): tried again next time.
        unreadable.add(id);
      }
    }
    for (const id of complete) if (!unreadable.has(id)) this.#seen.add(id);
    return { read };
  }
}
