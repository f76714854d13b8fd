import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { integrityError } from '../../../core/errors.js';
import { TykdrError } from '../../../core/errors.js';
import { classifyKey } from '../../../core/tyk/key-classes.js';
import { DumpPayloadCutter, LazyPayloadEntry } from './dump-payload.js';
import type { KeyRecord } from './keys-reader.js';
import type { RdbFacts } from './rdb-inspector.js';

const EMPTY = Buffer.alloc(0);

/**
 * The keys of a staged RDB file as RESTORE-ready records, in file order and in batches (one per chunk read):
 * each value's bytes cut from the file with the file's own RDB version and a CRC-64 appended (a DUMP payload).
 * No scratch server, and memory bounded by a chunk plus the largest value. A value tykdr cannot cut (a
 * Redis module type) is refused with the database and key named (a Tyk credential's name is never printed).
 * Returns the RDB's facts when the file ended whole (checksum and EOF checked).
 *
 * `file` may be an open handle (read from its start, closed at the end): a caller that must read on while
 * the file is renamed opens it first. `inspectOnly`: for a pass that counts keys and keeps few values (a
 * file-level restore's evidence): payloads are built only when read, the file's CRC-64 is left to the Redis
 * that loads it, and a module value is not refused (the target loads the file itself) but yielded with an
 * empty payload, which no real payload is.
 * `lazyPayloads` alone: payloads built only when read, module values refused. `reread`: a second read of a
 * private file an earlier read checked whole: its CRC-64 is not computed again (payloads still get theirs).
 */
export async function* rdbKeyRecords(
  file: string | FileHandle,
  signal?: AbortSignal,
  opts: { inspectOnly?: boolean; lazyPayloads?: boolean; reread?: boolean; name?: string } = {},
): AsyncGenerator<KeyRecord[], RdbFacts, undefined> {
  // inspectOnly: the target loads this file itself and Redis checks its CRC-64 as it loads it (and staging checked the
  // stored bytes' SHA-256): computing it here too would only compete with that load for a CPU.
  const cutter = new DumpPayloadCutter({ lazyPayloads: opts.inspectOnly || opts.lazyPayloads, checksum: !opts.reread && !opts.inspectOnly });
  const stream = typeof file === 'string' ? createReadStream(file, { highWaterMark: 1 << 20, signal }) : file.createReadStream({ start: 0, highWaterMark: 1 << 20, signal });
  for await (const chunk of stream) {
    const batch: KeyRecord[] = [];
    for (const e of cutter.update(chunk as Buffer)) {
      if (e instanceof LazyPayloadEntry) {
        batch.push(e);
        continue;
      }
      if (e.kind === 'unsupported' && opts.inspectOnly) {
        batch.push({ db: e.db, key: e.key, expireAt: e.expireAtMs ?? -1, payload: EMPTY });
        continue;
      }
      if (e.kind === 'unsupported') {
        const cls = classifyKey(e.key);
        const name = cls === 'other' ? `"${e.key.toString('utf8').slice(0, 120)}"` : `a ${cls} key`;
        throw new TykdrError('badInput', `the snapshot's RDB holds ${name} in database ${e.db} that tykdr cannot restore key by key: ${e.reason}`, {
          fix: 'delete the key from the source (it is not Tyk data) and take a new backup, or restore the whole file with restore.mode: rdb-file into a server that has the module',
        });
      }
      batch.push({ db: e.db, key: e.key, expireAt: e.expireAtMs ?? -1, payload: e.payload });
    }
    if (batch.length > 0) yield batch;
  }
  try {
    return cutter.finish();
  } catch (err) {
    if (err instanceof TykdrError) throw err;
    throw integrityError(`the staged RDB ${opts.name ?? (typeof file === 'string' ? file : '')} is not whole: ${(err as Error).message}`, 'stage the snapshot again; if it persists the snapshot is damaged', err);
  }
}
