import type { Redis } from 'ioredis';

/**
 * While a live restore writes into a Redis target, the target holds this key (db 0): the restore run and
 * the snapshot, so anyone looking at a target left by a killed restore sees that it is partial, and what
 * from. It is set before the first write and deleted once every key was written (before the checks, so
 * counts and samples never see it). No secret and no key name is in it.
 */
export const RESTORE_MARKER_KEY = 'tykdr:restore:in-progress';

export interface RestoreMarker {
  restore_id: string;
  snapshot: string;
  started_at: string;
  host?: string;
}

export async function setRestoreMarker(client: Redis, m: RestoreMarker): Promise<void> {
  await client.set(RESTORE_MARKER_KEY, JSON.stringify(m));
}

export async function clearRestoreMarker(client: Redis): Promise<void> {
  await client.del(RESTORE_MARKER_KEY);
}

/** The marker a killed restore left, or null. */
export async function readRestoreMarker(client: Redis): Promise<RestoreMarker | null> {
  const raw = await client.get(RESTORE_MARKER_KEY);
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as RestoreMarker;
  } catch {
    return { restore_id: '?', snapshot: '?', started_at: '?' };
  }
}
