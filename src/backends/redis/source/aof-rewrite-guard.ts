import type { Redis } from 'ioredis';
import { sourceUnreachable, TykdrError } from '../../../core/errors.js';
import { parseInfo } from '../protocol/connection.js';

const SETTING = 'auto-aof-rewrite-percentage';

export interface RewriteGuardFacts {
  /** The setting as it was before the backup (restored afterwards). */
  auto_aof_rewrite_percentage: string;
  /** A rewrite was running (or scheduled) when the backup began: it waited for it. */
  waited_for_rewrite: boolean;
  waited_ms: number;
  /** Set when the setting was already 0: automatic rewrites were off before tykdr touched them. */
  note?: string;
}

/**
 * Keeps Redis from rewriting its AOF while the folder is copied: a rewrite replaces the base file and
 * deletes the old files, so a copy spanning one could mix generations. Remembers
 * `auto-aof-rewrite-percentage`, sets it to 0 (no automatic rewrites), then waits until no rewrite runs
 * or is scheduled. release() puts the setting back; it must run whatever happens (the caller's finally),
 * and is safe to call twice. An explicit BGREWRITEAOF is not blocked: the copy holds its files open, so
 * it stays consistent, and the caller detects the rewrite.
 */
export class RewriteGuard {
  private released: Promise<void> | null = null;

  private constructor(
    private readonly reconnect: () => Promise<Redis>,
    private readonly where: string,
    readonly facts: RewriteGuardFacts,
  ) {}

  static async engage(client: Redis, reconnect: () => Promise<Redis>, where: string, waitMs: number, signal?: AbortSignal): Promise<RewriteGuard> {
    const before = ((await client.config('GET', SETTING)) as string[])[1];
    if (before === undefined) throw sourceUnreachable(`Redis at ${where} did not answer CONFIG GET ${SETTING}`);
    await client.config('SET', SETTING, '0');
    const guard = new RewriteGuard(reconnect, where, {
      auto_aof_rewrite_percentage: before,
      waited_for_rewrite: false,
      waited_ms: 0,
      ...(before === '0'
        ? { note: `${SETTING} was already 0 on ${where} before this backup, so automatic AOF rewrites were off; a tykdr run killed mid-copy leaves it so: if that was not deliberate, set it back (Redis's default is 100)` }
        : {}),
    });
    try {
      const started = Date.now();
      for (;;) {
        signal?.throwIfAborted();
        const p = parseInfo(String(await client.info('persistence')));
        if (p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled === '0') break;
        guard.facts.waited_for_rewrite = true;
        if (Date.now() - started > waitMs) {
          throw sourceUnreachable(
            `an AOF rewrite on Redis at ${where} was still running after ${Math.round(waitMs / 1000)} s: the folder was not copied`,
            'raise aof.rewriteWait, or back up when no BGREWRITEAOF runs',
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      guard.facts.waited_ms = Date.now() - started;
    } catch (err) {
      await guard.release().catch(() => undefined);
      throw err;
    }
    return guard;
  }

  /** Puts the setting back (a fresh connection, so a connection lost during a long copy does not matter). */
  release(): Promise<void> {
    this.released ??= this.restore();
    return this.released;
  }

  private async restore(): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      let c: Redis | undefined;
      try {
        c = await this.reconnect();
        await c.config('SET', SETTING, this.facts.auto_aof_rewrite_percentage);
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      } finally {
        c?.disconnect();
      }
    }
    throw new TykdrError('sourceUnreachable', `could not set ${SETTING} back to ${this.facts.auto_aof_rewrite_percentage} on Redis at ${this.where} after the backup (${(last as Error)?.message ?? last}): automatic AOF rewrites stay off until you do`, {
      fix: `run CONFIG SET ${SETTING} ${this.facts.auto_aof_rewrite_percentage} on ${this.where} (redis-cli)`,
      cause: last,
    });
  }
}
