/**
 * Selective point-in-time restore benchmark: N Tyk-like `apikey-*` sessions (bench/tyk-sessions.ts) as the
 * base of a `tykdr stream` chain, N/10 more sessions written after it (the feed), then the sessions of one
 * API deleted; timed:
 *
 *   dry-run --to-time --api   stage base and segments, scratch server loads the base, feed replayed, select, EXISTS
 *   restore --to-time --api   the same, writing the deleted sessions back as they were before the delete
 *
 * Prints wall time, CPU seconds, feed commands replayed, and peak RSS (node and its children: the scratch
 * redis-server holding the keyspace at that time is the cost of this path); asserts nothing.
 *
 *   npx tsx bench/redis-selective-pitr.ts [--keys 200000]
 *
 * Needs dist/ (npx tsc -p tsconfig.json), redis-server, redis-cli, age-keygen.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis as IORedis } from 'ioredis';
import { dbsize, fillRedis, fmtInt, installCleanup, log, machineLines, measured, must, peakDetail, repoRoot, runMain, sleep, startRedis, table, tempDir, track } from './lib.js';

installCleanup();

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '200000' } } });
  const N = Number(values.keys!.replace(/_/g, ''));
  for (const l of machineLines()) log(l);
  const work = await tempDir('selective-pitr');
  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  const live = await startRedis({ extra: ['--repl-diskless-sync-delay', '0'] });
  log(`loading ${fmtInt(N)} sessions`);
  await fillRedis(live.port, 0, N);
  const config = path.join(work, 'tykdr.yaml');
  await writeFile(
    config,
    `store: { kind: local, path: ${path.join(work, 'store')} }\nencryption: { recipients: [${recipient}], identityFile: ${identity} }\n` +
      `restore: { stagingDir: ${path.join(work, 'staging')}, reportDir: ${path.join(work, 'reports')} }\n` +
      `components:\n  redis: { kind: redis, host: 127.0.0.1, port: ${live.port} }\n`,
  );
  const node = `'${process.execPath}' '${repoRoot}/bin/run.js'`;
  const stream = track(spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'stream', '-c', config, '--segment', '2s'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  await new Promise<void>((resolve, reject) => {
    stream.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/chain \S+ started/.test(err)) resolve();
    });
    stream.once('close', (c) => reject(new Error(`stream exited ${c}: ${err.slice(-500)}`)));
  });
  const feed = Math.round(N / 10);
  log(`base taken; writing ${fmtInt(feed)} more sessions into the feed`);
  await fillRedis(live.port, N, N + feed);
  await sleep(3000);
  const at = new Date();
  await sleep(1000);

  // The human error: every session with access to one API (the first one of the first session) deleted.
  const r = new IORedis({ port: live.port, host: '127.0.0.1' });
  let api = '';
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const vals = keys.length ? await r.mget(...keys) : [];
    const doomed: string[] = [];
    keys.forEach((k, i) => {
      const rights = Object.keys((JSON.parse(vals[i] ?? '{}') as { access_rights?: object }).access_rights ?? {});
      api ||= rights[0] ?? '';
      if (rights.includes(api)) doomed.push(k);
    });
    if (doomed.length) deleted += await r.del(...doomed);
  } while (cursor !== '0');
  r.disconnect();
  log(`deleted ${fmtInt(deleted)} sessions of API ${api}; ${fmtInt(await dbsize(live.port))} keys left`);
  await sleep(3000);
  stream.kill('SIGTERM');
  await new Promise((res) => stream.once('close', res));

  const rows: string[][] = [];
  const timesFile = path.join(work, 'times.txt');
  for (const [label, args] of [
    ['dry-run --to-time --api', `--api ${api} --dry-run --json`],
    ['restore --to-time --api', `--api ${api} --yes --json`],
  ] as const) {
    const m = await measured(`${node} restore --plan redis -c '${config}' --to-time ${at.toISOString()} ${args}`, { timesFile });
    if (m.code !== 0) throw new Error(`${label} exited ${m.code}: ${m.stderr.slice(-1000)}`);
    const out = JSON.parse(m.stdout);
    const details = out.report?.steps.find((s: { id: string }) => s.id === 'redis').details.redis;
    const sel = out.selection?.[0]?.selection ?? details.selection;
    const written = sel.would_write ?? sel.written;
    rows.push([label, m.seconds.toFixed(2), (m.cpuUser + m.cpuSys).toFixed(2), fmtInt(sel.snapshot_keys), details ? fmtInt(details.feed_replay.commands) : '-', fmtInt(sel.selected), fmtInt(written), fmtInt(sel.kept), peakDetail(m)]);
    log(`${label}: ${m.seconds.toFixed(2)} s`);
  }
  if (Number(rows[1]![6]!.replace(/,/g, '')) !== deleted) throw new Error(`the restore wrote ${rows[1]![6]} keys, ${deleted} were deleted`);
  process.stdout.write(`\nselective point-in-time restore, ${fmtInt(N)} sessions in the base, ${fmtInt(feed)} written after it, ${fmtInt(deleted)} of one API deleted (wall time of the whole command)\n`);
  process.stdout.write(table(['run', 'seconds', 'CPU s', 'keys at T', 'feed cmds', 'selected', 'written', 'kept', 'peak RSS'], rows) + '\n');
  await live.stop();
}

void runMain(main);
