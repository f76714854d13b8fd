import type { Redis } from 'ioredis';

/** A Redis Cluster master that owns slots. */
export interface ClusterMaster {
  id: string;
  host: string;
  port: number;
  /** Inclusive slot ranges. */
  slots: Array<[number, number]>;
}

export const CLUSTER_SLOTS = 16384;

/**
 * The masters that own slots, from CLUSTER NODES (every Redis Cluster version answers it, managed services
 * included). Failed masters (flag `fail`) are left out; the caller finds their slots missing. A master that
 * announces no IP (a node that never met another) is taken at `seed`, the address we reached it at.
 */
export function parseClusterNodes(text: string, seed: { host: string; port: number }): ClusterMaster[] {
  const out: ClusterMaster[] = [];
  for (const line of text.split(/\r?\n/)) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const [id, addr, flagText] = f as [string, string, string];
    const flags = flagText.split(',');
    if (!flags.includes('master') || flags.includes('fail') || flags.includes('noaddr') || flags.includes('handshake')) continue;
    const slots: Array<[number, number]> = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // a slot being migrated or imported: still owned by this node
      const m = /^(\d+)(?:-(\d+))?$/.exec(s);
      if (m) slots.push([Number(m[1]), Number(m[2] ?? m[1])]);
    }
    if (slots.length === 0) continue;
    // ip:port@cport[,hostname]; IPv6 addresses contain colons, so split at the last one.
    const hostPort = addr.split('@')[0]!;
    const colon = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(colon + 1));
    const myself = flags.includes('myself');
    out.push({ id, host: host === '' || (myself && port === 0) ? seed.host : host, port: port === 0 && myself ? seed.port : port, slots: slots.sort((a, b) => a[0] - b[0]) });
  }
  return out.sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
}

export async function clusterMasters(client: Pick<Redis, 'call'>, seed: { host: string; port: number }): Promise<ClusterMaster[]> {
  return parseClusterNodes(String(await client.call('CLUSTER', 'NODES')), seed);
}

/** A text that changes whenever a slot changes owner: compared before and after a key-level backup. */
export function slotLayout(masters: ClusterMaster[]): string {
  return masters
    .flatMap((m) => m.slots.map(([a, b]) => `${a}-${b}:${m.id}`))
    .sort()
    .join(' ');
}

/** Slots no master serves (e.g. a failed master's), as "a-b" ranges. */
export function uncoveredSlots(masters: ClusterMaster[]): string[] {
  const owned = new Uint8Array(CLUSTER_SLOTS);
  for (const m of masters) for (const [a, b] of m.slots) owned.fill(1, a, b + 1);
  const gaps: string[] = [];
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    if (owned[s]) continue;
    let e = s;
    while (e + 1 < CLUSTER_SLOTS && !owned[e + 1]) e++;
    gaps.push(s === e ? `${s}` : `${s}-${e}`);
    s = e;
  }
  return gaps;
}

/** Slot owner by slot number: index into `masters`, -1 when unowned. */
export function slotTable(masters: ClusterMaster[]): Int16Array {
  const t = new Int16Array(CLUSTER_SLOTS).fill(-1);
  masters.forEach((m, i) => {
    for (const [a, b] of m.slots) t.fill(i, a, b + 1);
  });
  return t;
}

// CRC16-CCITT (XMODEM), as Redis Cluster hashes keys (src/crc16.c).
const CRC16 = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(b: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ b[i]!) & 0xff]!;
  return crc;
}

/** The cluster slot of a key: CRC16 of the key, or of its hash tag ("{...}", when non-empty), mod 16384. */
export function keySlot(key: Uint8Array): number {
  const open = key.indexOf(0x7b); // {
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(key, open + 1, close) & (CLUSTER_SLOTS - 1);
  }
  return crc16(key, 0, key.length) & (CLUSTER_SLOTS - 1);
}
