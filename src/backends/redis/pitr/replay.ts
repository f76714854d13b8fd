import { createReadStream } from 'node:fs';
import { TykdrError } from '../../../core/errors.js';
import { CommandSplitter, type FeedCommand } from '../formats/command-feed.js';
import { CommandEncoder, RespError, type RespPipe, type RespReply } from '../protocol/resp-pipe.js';

/** Not data: the master's keepalives and replica protocol, which a normal server refuses or does not need. */
const SKIP = new Set(['PING', 'REPLCONF']);

export interface ReplaySegment {
  /** The staged plaintext (RESP, as the master sent it). */
  file: string;
  /** Replay this many bytes of it (a point in time inside the segment), else all of it. */
  bytes: number;
  /** [bytes from the segment start, unix ms] marks, ascending: when each part arrived (for relative expiries). */
  marks: Array<[number, number]>;
}

export interface ReplayResult {
  commands: number;
  skipped: number;
  /** Relative expiries (EXPIRE, SETEX, SET ... EX ...) rewritten to absolute ones at their arrival time. */
  expiriesMadeAbsolute: number;
  errors: number;
  firstErrors: string[];
}

/**
 * Replays staged feed segments into a target through one pipelined connection, in order, stopping at each
 * segment's `bytes`. Expiries the feed states relative to "now" (Redis 6.2 propagates EXPIRE and SETEX as sent;
 * 7.0 and later send absolute PEXPIREAT/PXAT) are rewritten to absolute times using the arrival time of their
 * part of the feed, so a key replayed later still expires when it would have. Error replies are counted, and
 * the first few kept, not thrown: the caller decides (a replay with errors is a failed step).
 */
export async function replaySegments(pipe: RespPipe, segments: ReplaySegment[], opts: { batch?: number; signal?: AbortSignal; onProgress?(n: number): void } = {}): Promise<ReplayResult> {
  const r: ReplayResult = { commands: 0, skipped: 0, expiriesMadeAbsolute: 0, errors: 0, firstErrors: [] };
  const enc = new CommandEncoder();
  const batch = opts.batch ?? 1000;
  const flush = async () => {
    if (enc.count === 0) return;
    const replies = await pipe.exec(enc.take());
    const count = (rep: RespReply) => {
      if (rep instanceof RespError) {
        r.errors += 1;
        if (r.firstErrors.length < 5) r.firstErrors.push(rep.message.slice(0, 160));
      } else if (Array.isArray(rep)) {
        // EXEC answers with its commands' replies: one refused inside a transaction is an error too.
        for (const inner of rep) count(inner);
      }
    };
    for (const rep of replies) count(rep);
    opts.onProgress?.(r.commands);
  };
  for (const seg of segments) {
    const splitter = new CommandSplitter();
    let read = 0;
    let markAt = 0;
    const timeAt = (end: number): number => {
      while (markAt < seg.marks.length - 1 && seg.marks[markAt]![0] < end) markAt++;
      return seg.marks[markAt]?.[1] ?? Date.now();
    };
    if (seg.bytes === 0) continue;
    for await (const chunk of createReadStream(seg.file, { end: seg.bytes - 1, highWaterMark: 256 * 1024 })) {
      opts.signal?.throwIfAborted();
      read += (chunk as Buffer).length;
      for (const c of splitter.push(chunk as Buffer)) {
        if (c.args.length === 0) continue;
        const name = c.args[0]!.toString('latin1').toUpperCase();
        if (SKIP.has(name)) {
          r.skipped += 1;
          continue;
        }
        const args = absoluteExpiry(name, c, timeAt(c.end));
        if (args !== c.args) r.expiriesMadeAbsolute += 1;
        enc.command(...args);
        r.commands += 1;
        if (enc.count >= batch) await flush();
      }
    }
    if (splitter.pending > 0) {
      throw new TykdrError('integrityError', `segment file ${seg.file} ends inside a command after ${read} bytes`, { fix: 'the staged segment is cut short: run the restore again' });
    }
  }
  await flush();
  return r;
}

/** The command with a relative expiry made absolute at `ms`, or the same args array when there is none. */
export function absoluteExpiry(name: string, c: FeedCommand, ms: number): Buffer[] {
  const a = c.args;
  const num = (b: Buffer | undefined) => (b === undefined ? NaN : Number(b.toString('latin1')));
  switch (name) {
    case 'EXPIRE':
    case 'PEXPIRE': {
      const v = num(a[2]);
      if (!Number.isFinite(v)) return a;
      const at = name === 'EXPIRE' ? ms + v * 1000 : ms + v;
      return [Buffer.from('PEXPIREAT'), a[1]!, Buffer.from(String(Math.round(at))), ...a.slice(3)];
    }
    case 'SETEX':
    case 'PSETEX': {
      const v = num(a[2]);
      if (!Number.isFinite(v) || a.length !== 4) return a;
      const at = name === 'SETEX' ? ms + v * 1000 : ms + v;
      return [Buffer.from('SET'), a[1]!, a[3]!, Buffer.from('PXAT'), Buffer.from(String(Math.round(at)))];
    }
    case 'SET':
    case 'GETEX': {
      // Options start after the key (GETEX) or after the key and the value (SET, whose value may be "EX").
      const first = name === 'SET' ? 3 : 2;
      const i = a.findIndex((x, k) => k >= first && /^(EX|PX)$/i.test(x.toString('latin1')));
      if (i < 0) return a;
      const v = num(a[i + 1]);
      if (!Number.isFinite(v)) return a;
      const unit = a[i]!.toString('latin1').toUpperCase();
      const at = unit === 'EX' ? ms + v * 1000 : ms + v;
      return [...a.slice(0, i), Buffer.from('PXAT'), Buffer.from(String(Math.round(at))), ...a.slice(i + 2)];
    }
    default:
      return a;
  }
}
