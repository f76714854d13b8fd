/**
 * Selective restore benchmark: a snapshot of N Tyk-like `apikey-*` sessions (bench/tyk-sessions.ts), the
 * sessions of one API deleted from the live Redis, then, timed:
 *
 *   dry-run --api   `restore --plan redis --api ID --dry-run --json`: stage, decode every session's value, EXISTS
 *   restore --api   the same, writing the deleted sessions back (no-overwrite: the others are kept)
 *   dry-run --key   `restore --plan redis --key 'apikey-0*' --dry-run`: names only, no value decoded
 *
 * Prints wall time, CPU seconds (the command and its children: less sensitive to a busy machine), records read
 * per second of wall time and peak RSS (node and its children) per run; asserts nothing.
 *
 *   npx tsx bench/redis-selective.ts [--keys 200000] [--node-args=--cpu-prof]   (profiles land in the repo root)
 *
 * Needs dist/ (npx tsc -p tsconfig.json), redis-server, redis-cli, age-keygen.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis as IORedis } from 'ioredis';
import { dbsize, fillRedis, fmtInt, installCleanup, log, machineLines, measured, must, peakDetail, repoRoot, runMain, startRedis, table, tempDir } from './lib.js';

installCleanup();

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '200000' }, 'node-args': { type: 'string', default: '' } } });
  const N = Number(values.keys!.replace(/_/g, ''));
  for (const l of machineLines()) log(l);
  const work = await tempDir('selective');
  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  const live = await startRedis();
  log(`loading ${fmtInt(N)} sessions`);
  await fillRedis(live.port, 0, N);
  const config = path.join(work, 'tykdr.yaml');
  await writeFile(
    config,
    `store: { kind: local, path: ${path.join(work, 'store')} }\nencryption: { recipients: [${recipient}], identityFile: ${identity} }\n` +
      `restore: { stagingDir: ${path.join(work, 'staging')}, reportDir: ${path.join(work, 'reports')} }\n` +
      `components:\n  redis: { kind: redis, host: 127.0.0.1, port: ${live.port} }\n`,
  );
  const node = `'${process.execPath}' ${values['node-args']} '${repoRoot}/bin/run.js'`;
  await must('bash', ['-c', `${node} backup -c '${config}' --json`], { cwd: repoRoot });

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

  const rows: string[][] = [];
  const timesFile = path.join(work, 'times.txt');
  for (const [label, args] of [
    ['dry-run --api', `--api ${api} --dry-run --json`],
    ['restore --api', `--api ${api} --json`],
    ['dry-run --key', `--key 'apikey-0*' --dry-run --json`],
  ] as const) {
    const m = await measured(`${node} restore --plan redis -c '${config}' ${args}`, { timesFile });
    if (m.code !== 0) throw new Error(`${label} exited ${m.code}: ${m.stderr.slice(-1000)}`);
    const out = JSON.parse(m.stdout);
    const sel = out.selection?.[0]?.selection ?? out.report.steps.find((s: { id: string }) => s.id === 'redis').details.redis.selection;
    const written = sel.would_write ?? sel.written;
    rows.push([label, m.seconds.toFixed(2), (m.cpuUser + m.cpuSys).toFixed(2), fmtInt(sel.snapshot_keys), fmtInt(sel.snapshot_keys / m.seconds), fmtInt(sel.selected), fmtInt(written), fmtInt(sel.kept), fmtInt(sel.values_decoded), peakDetail(m)]);
    log(`${label}: ${m.seconds.toFixed(2)} s`);
  }
  if (Number(rows[1]![6]!.replace(/,/g, '')) !== deleted) throw new Error(`the restore wrote ${rows[1]![6]} keys, ${deleted} were deleted`);
  process.stdout.write(`\nselective restore, ${fmtInt(N)} sessions, ${fmtInt(deleted)} of one API deleted (wall time of the whole command: stage, select, write, checks)\n`);
  process.stdout.write(table(['run', 'seconds', 'CPU s', 'records', 'records/s', 'selected', 'written', 'kept', 'decoded', 'peak RSS'], rows) + '\n');
  await live.stop();
}

void runMain(main);
