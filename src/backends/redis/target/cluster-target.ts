import type { Redis } from 'ioredis';
import { TykdrError } from '../../../core/errors.js';
import { clusterMasters, keySlot, slotTable, uncoveredSlots, type ClusterMaster } from '../protocol/cluster.js';
import type { RespPipe } from '../protocol/resp-pipe.js';
import { atAddress, connectTarget, explainTargetError, openTargetPipe, readInfo, type RestoreTarget } from '../protocol/target-connection.js';

/**
 * A Redis Cluster restore target: its slot-owning masters and which owns each slot. A key goes to the
 * master that owns CRC16(key or hash tag) mod 16384, as cluster clients route it.
 */
export class ClusterTarget {
  private readonly slots: Int16Array;
  private readonly clients = new Map<number, Promise<Redis>>();

  private constructor(
    readonly target: RestoreTarget,
    readonly masters: ClusterMaster[],
  ) {
    this.slots = slotTable(masters);
  }

  /** Reads the layout through `seed` (a connection to the configured target) and refuses an incomplete cluster. */
  static async discover(target: RestoreTarget, seed: Redis): Promise<ClusterTarget> {
    let masters: ClusterMaster[];
    try {
      masters = await clusterMasters(seed, target.address);
    } catch (err) {
      throw explainTargetError(err, target, 'read the cluster layout (CLUSTER NODES)');
    }
    const gaps = uncoveredSlots(masters);
    if (gaps.length > 0) {
      throw new TykdrError('targetError', `the Redis Cluster at ${target.display} has slots no healthy master serves (${gaps.slice(0, 5).join(', ')}): keys of those slots could not be restored. Nothing was changed`, {
        fix: 'wait until CLUSTER INFO says cluster_state:ok on the target, then restore',
      });
    }
    return new ClusterTarget(target, masters);
  }

  /** The target at master `i`'s address. */
  node(i: number): RestoreTarget {
    const m = this.masters[i]!;
    return atAddress(this.target, m.host, m.port, `cluster master ${m.id.slice(0, 8)}`);
  }

  /** Index of the master that owns the key's slot. */
  ownerOf(key: Uint8Array): number {
    return this.slots[keySlot(key)]!;
  }

  /** A command connection to master `i` (shared, opened on first use). */
  client(i: number, signal?: AbortSignal): Promise<Redis> {
    let c = this.clients.get(i);
    if (!c) {
      c = connectTarget(this.node(i), 0, signal);
      this.clients.set(i, c);
      c.catch(() => this.clients.delete(i));
    }
    return c;
  }

  /** A pipeline connection to master `i`; the caller closes it. */
  pipe(i: number, signal?: AbortSignal): Promise<RespPipe> {
    return openTargetPipe(this.node(i), 0, signal);
  }

  /** redis_version of every master. */
  async versions(signal?: AbortSignal): Promise<Array<{ display: string; version: string }>> {
    const out: Array<{ display: string; version: string }> = [];
    for (let i = 0; i < this.masters.length; i++) {
      const info = await readInfo(await this.client(i, signal), 'server');
      out.push({ display: this.node(i).display, version: info.redis_version ?? 'unknown' });
    }
    return out;
  }

  close(): void {
    for (const c of this.clients.values()) c.then((r) => r.disconnect(), () => undefined);
    this.clients.clear();
  }
}
