import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { LockBackend } from './redis-lock.js';
import type { Logger } from './log.js';

export interface Leadership {
  readonly isLeader: boolean;
  /** Aborted when this instance stops being leader; a fresh signal per term. Never aborted without a lock. */
  readonly termSignal: AbortSignal;
  /** Begins campaigning (and renewing) in the background. */
  start(): void;
  /** One acquisition attempt now; rejects when the lock store cannot be reached. */
  attempt(): Promise<boolean>;
  /** Stops campaigning, releases the lock if held (compare-and-delete) and closes the connection. Never rejects. */
  stop(): Promise<void>;
}

export interface ElectorOptions {
  lock: LockBackend;
  instanceId: string;
  ttlMs: number;
  log: Logger;
  /** Called on every transition. */
  onChange?(leader: boolean, reason: string): void;
}

/**
 * Leader election with a lease in Redis, like Tyk's uptime-test master (a dead man's switch):
 *
 * - Followers try `SET key token NX PX ttl` every ttl/3, and also right after the holder's lease runs
 *   out (they read its PTTL), so a leader that dies is replaced within the TTL plus one round trip.
 * - The leader renews every ttl/3 with compare-and-renew. The lease is counted from the moment each
 *   successful SET/renew was *sent* (a monotonic clock), so the local view always ends before Redis's.
 *   If no renewal succeeds before that local end, or a renewal finds another token, leadership is lost
 *   at once: `termSignal` aborts, which stops running jobs.
 * - On stop, the lock is released with compare-and-delete, so a follower takes over at its next try.
 *
 * The token is `<instance-id> <nonce>`: two processes given the same --instance-id never both lead.
 */
export class LeaderElector implements Leadership {
  readonly #o: ElectorOptions;
  readonly #token: string;
  #leader = false;
  #term = new AbortController();
  #leaseEnd = 0;
  #deadline: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #stopped = false;
  #lastHolder: string | undefined;
  #unreachable = false;
  #everLed = false;
  /** When to try again as a follower: ttl/3, or just after the holder's lease ends if that is sooner. */
  #nextTryMs = 0;

  constructor(o: ElectorOptions) {
    this.#o = o;
    this.#token = `${o.instanceId} ${randomBytes(4).toString('hex')}`;
    this.#term.abort(new Error('not leader'));
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  get termSignal(): AbortSignal {
    return this.#term.signal;
  }

  get token(): string {
    return this.#token;
  }

  async attempt(): Promise<boolean> {
    const sent = performance.now();
    if (this.#leader) return this.#renew(sent);
    if (await this.#o.lock.acquire(this.#token, this.#o.ttlMs)) {
      this.#elected(sent, 'acquired the lock');
      return true;
    }
    const h = await this.#o.lock.holder();
    if (h?.token === this.#token) {
      // Our own lease, from before a deposition on a slow or lost connection: take it back if still ours.
      if (await this.#o.lock.renew(this.#token, this.#o.ttlMs)) {
        this.#elected(sent, 'renewed its own unexpired lock');
        return true;
      }
    } else if (h && h.token !== this.#lastHolder) {
      this.#lastHolder = h.token;
      this.#o.log.info('another instance is leader', { leader: h.token.split(' ')[0], lock: this.#o.lock.description });
    }
    this.#nextTryMs = h && h.pttlMs > 0 ? Math.min(this.#o.ttlMs / 3, h.pttlMs + 10) : this.#o.ttlMs / 3;
    return false;
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    const wasLeader = this.#leader;
    this.#depose('shutting down');
    // Also after a deposition: Redis may still hold our lease (compare-and-delete removes only our own).
    if (this.#everLed) {
      try {
        const released = await this.#o.lock.release(this.#token);
        if (released || wasLeader) {
          this.#o.log.info(released ? 'released the leader lock' : 'the leader lock was no longer ours', { lock: this.#o.lock.description });
        }
      } catch (err) {
        this.#o.log.warn('could not release the leader lock; it expires by itself', { lock: this.#o.lock.description, error: err });
      }
    }
    await this.#o.lock.close();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let wait = this.#o.ttlMs / 3;
      try {
        await this.attempt();
        if (!this.#leader) wait = this.#nextTryMs || wait;
        if (this.#unreachable) this.#o.log.info('leader lock reachable again', { lock: this.#o.lock.description });
        this.#unreachable = false;
      } catch (err) {
        if (!this.#unreachable) {
          this.#o.log.warn(this.#leader ? 'could not renew the leader lock; retrying until the lease ends' : 'could not reach the leader lock; retrying', {
            lock: this.#o.lock.description,
            error: err,
          });
        }
        this.#unreachable = true;
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(10, wait));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #renew(sent: number): Promise<boolean> {
    if (await this.#o.lock.renew(this.#token, this.#o.ttlMs)) {
      if (this.#leader) this.#extend(sent);
      return this.#leader;
    }
    if (this.#leader) this.#depose('the lock was taken over or expired');
    return false;
  }

  #elected(sent: number, how: string): void {
    this.#leader = true;
    this.#everLed = true;
    this.#lastHolder = undefined;
    this.#term = new AbortController();
    this.#extend(sent);
    this.#o.log.info('became leader', { how, lock: this.#o.lock.description, ttl_ms: this.#o.ttlMs });
    this.#o.onChange?.(true, how);
  }

  #extend(sent: number): void {
    this.#leaseEnd = sent + this.#o.ttlMs;
    clearTimeout(this.#deadline);
    // A small margin for clock rate differences between this host and Redis.
    const margin = Math.min(250, this.#o.ttlMs / 20);
    this.#deadline = setTimeout(() => this.#depose('the lease ran out before a renewal succeeded'), Math.max(0, this.#leaseEnd - margin - performance.now()));
  }

  #depose(reason: string): void {
    if (!this.#leader) return;
    this.#leader = false;
    clearTimeout(this.#deadline);
    this.#term.abort(new Error(`lost leadership: ${reason}`));
    this.#o.log[reason === 'shutting down' ? 'info' : 'warn']('stopped being leader', { reason });
    this.#o.onChange?.(false, reason);
  }
}

/** --no-leader: always leader, nothing to renew or release. */
export class SoleLeader implements Leadership {
  readonly #term = new AbortController();
  readonly isLeader = true;
  get termSignal(): AbortSignal {
    return this.#term.signal;
  }
  start(): void {}
  async attempt(): Promise<boolean> {
    return true;
  }
  async stop(): Promise<void> {}
}
