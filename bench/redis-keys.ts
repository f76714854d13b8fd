/**
 * Key-level Redis backup benchmark: `tykdr backup` with `mode: keys` (SCAN + pipelined DUMP/PEXPIRETIME, the mode
 * for managed Redis and Redis Cluster) against `mode: rdb` (the replication protocol, the default), same Redis holding
 * N Tyk-like `apikey-*` sessions, same local store, same compression, in one run; keys per second, wall time and
 * tykdr's peak RSS for both. With --runs R each round runs both, the order reversed every other round.
 *
 * Prints figures; asserts nothing (exit 0 unless the benchmark itself could not run).
 *
 *   npx tsx bench/redis-keys.ts [--keys 1000000] [--runs 3] [--max-runs 3R] [--level 3] [--quiet-wait 180] [--tykdr-root DIR]
 *
 * Everything (redis-server, temp folders) is started here and removed on exit, failure or Ctrl-C.
 * Needs dist/ (npm run build), redis-server, redis-cli, zstd, age, age-keygen; bench/restore-run.sh does it all.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  cpuSeconds, dbsize, describeCheckout, fillRedis, fmtInt, fmtMB, installCleanup, log, machineLines, measured, median, must,
  otherCpuStart, peakDetail, peakOf, repoRoot, runMain, sleep, startRedis, table, tempDir, track, waitQuiet,
} from './lib.js';

installCleanup();

const DISTURBED_CPU_S = 0.5;
type Mode = 'rdb' | 'keys';

interface Row {
  run: number;
  mode: Mode;
  seconds: number;
  keys: number;
  /** Keys per second over the transfer: rdb from SYNC sent to object stored; keys from scan start to scan end (the manifest's keys_per_second). */
  transferKps: number;
  transferS: number;
  startupS: number;
  finishS: number;
  plaintextBytes: number;
  storedBytes: number;
  peakKb: number;
  peakText: string;
  clientCpu: number;
  redisCpu: number;
  otherCpu: number;
  quiet: boolean;
  facts: string;
}

/** age -d | zstd -d of the stored object: SHA-256 of the stored bytes, plaintext size and its first bytes. */
async function decrypt(file: string, identity: string): Promise<{ sha256: string; stored: number; plain: number; magic: string }> {
  const child = track(spawn('bash', ['-c', `set -o pipefail; age -d -i '${identity}' | zstd -d -q`], { stdio: ['pipe', 'pipe', 'pipe'] }));
  const hash = createHash('sha256');
  let stored = 0;
  let plain = 0;
  let head = Buffer.alloc(0);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    if (head.length < 8) head = Buffer.concat([head, d.subarray(0, 8 - head.length)]);
    plain += d.length;
  });
  const closed = new Promise<number | null>((r) => child.once('close', r));
  child.stdin!.on('error', () => undefined);
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    stored += (chunk as Buffer).length;
    if (!child.stdin!.write(chunk)) await Promise.race([new Promise((r) => child.stdin!.once('drain', r)), closed]);
  }
  child.stdin!.end();
  const code = await closed;
  if (code !== 0) throw new Error(`age -d | zstd -d failed (exit ${code}): ${stderr.trim()}`);
  return { sha256: hash.digest('hex'), stored, plain, magic: head.toString('latin1') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '3' },
      'max-runs': { type: 'string' },
      level: { type: 'string', default: '3' },
      'quiet-wait': { type: 'string', default: '180' },
      'tykdr-root': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx bench/redis-keys.ts [--keys 1000000] [--runs 3] [--max-runs 3R] [--level 3] [--quiet-wait 180] [--tykdr-root DIR]\n');
    return;
  }
  const N = Number(values.keys!.replace(/_/g, ''));
  const runs = Number(values.runs);
  const maxRuns = Number(values['max-runs'] ?? 3 * runs);
  const level = Number(values.level);
  const quietWait = Number(values['quiet-wait']);
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(maxRuns) || maxRuns < runs) {
    throw new Error(`bad --keys/--runs/--max-runs: ${values.keys} / ${values.runs} / ${values['max-runs']}`);
  }
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new Error(`bad --level ${values.level}: 1..19`);
  const tykdrRoot = path.resolve(values['tykdr-root'] ?? repoRoot);
  if (!existsSync(path.join(tykdrRoot, 'dist/commands/backup.js'))) throw new Error(`${tykdrRoot}/dist is missing: run npm run build`);
  const node = `'${process.execPath}' '${tykdrRoot}/bin/run.js'`;
  const machine = machineLines();
  for (const l of machine) log(l);

  const work = await tempDir('keys');
  const store = path.join(work, 'store');
  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  log('starting redis-server');
  // As bench/redis-backup.ts: diskless sync without delay (tykdr's rdb mode reads the RDB over SYNC).
  const redis = await startRedis({ extra: ['--repl-diskless-sync-delay', '0'] });
  const t = performance.now();
  log(`loading ${fmtInt(N)} keys through redis-cli --pipe`);
  await fillRedis(redis.port, 0, N);
  if ((await dbsize(redis.port)) !== N) throw new Error(`DBSIZE is not ${N} after loading`);
  const mem = /used_memory_human:(\S+)/.exec(await redis.cli('INFO', 'memory'))?.[1];
  log(`${fmtInt(N)} keys loaded in ${((performance.now() - t) / 1000).toFixed(1)} s; Redis used_memory ${mem}`);

  const config = (mode: Mode) =>
    `store:\n  kind: local\n  path: ${store}\nencryption:\n  recipients: [${recipient}]\ncompression:\n  algorithm: zstd\n  level: ${level}\n` +
    `components:\n  redis:\n    kind: redis\n    mode: ${mode}\n    host: 127.0.0.1\n    port: ${redis.port}\n`;
  const configs: Record<Mode, string> = { rdb: path.join(work, 'rdb.yaml'), keys: path.join(work, 'keys.yaml') };
  for (const m of ['rdb', 'keys'] as const) await writeFile(configs[m], config(m));

  const rows: Row[] = [];
  const timesFile = path.join(work, 'times.txt');
  let notQuiet = 0;
  let cleanRounds = 0;
  for (let r = 1; cleanRounds < runs && r <= maxRuns; r++) {
    const order: Mode[] = r % 2 === 1 ? ['rdb', 'keys'] : ['keys', 'rdb'];
    let disturbed = false;
    for (const mode of order) {
      log(`round ${r} (${cleanRounds} of ${runs} clean so far, at most ${maxRuns}): mode ${mode}`);
      const q = await waitQuiet(quietWait);
      if (!q.quiet && quietWait > 0) notQuiet++;
      const row = await runOne(mode, r);
      row.quiet = q.quiet;
      disturbed ||= row.otherCpu > DISTURBED_CPU_S;
      log(
        `  ${row.seconds.toFixed(2)} s = ${fmtInt(row.keys / row.seconds)} keys/s (transfer ${fmtInt(row.transferKps)} keys/s); ` +
          `${fmtMB(row.plaintextBytes)} MB -> ${fmtMB(row.storedBytes)} MB; peak RSS ${row.peakText}; CPU other ${row.otherCpu.toFixed(2)}${row.otherCpu > DISTURBED_CPU_S ? ': disturbed' : ''}`,
      );
      rows.push(row);
    }
    if (!disturbed) cleanRounds++;
  }

  async function runOne(mode: Mode, runNo: number): Promise<Row> {
    const redisBefore = cpuSeconds(redis.pid);
    const other = otherCpuStart();
    const m = await measured(`${node} backup -c '${configs[mode]}' --json`, { timesFile });
    if (m.code !== 0) throw new Error(`tykdr backup (mode ${mode}) exited ${m.code}:\n${m.stderr.trim().slice(-3000)}`);
    await sleep(1500); // let Redis reap its fork child (rdb) before reading its CPU
    const redisAfter = cpuSeconds(redis.pid);
    const o = other();
    const out = JSON.parse(m.stdout) as { id: string; manifest: any };
    const c = out.manifest.components.redis;
    const a = c.artifact;
    const src = c.source;
    const file = path.join(store, 'snapshots', out.id, a.name);
    const v = await decrypt(file, identity);
    const problems: string[] = [];
    if (src.total_keys !== N) problems.push(`manifest total_keys ${src.total_keys} != ${N} keys loaded`);
    if (v.sha256 !== a.sha256) problems.push(`sha256 ${v.sha256} != manifest ${a.sha256}`);
    if (v.stored !== a.stored_bytes) problems.push(`stored ${v.stored} != manifest ${a.stored_bytes}`);
    if (v.plain !== a.plaintext_bytes) problems.push(`decrypted ${v.plain} bytes != manifest plaintext_bytes ${a.plaintext_bytes}`);
    const magicOk = mode === 'rdb' ? /^REDIS\d{3}/.test(v.magic) : v.magic === 'TYKDRKEY';
    if (!magicOk) problems.push(`decrypted object starts with ${JSON.stringify(v.magic)}`);
    if (problems.length > 0) throw new Error(`mode ${mode} snapshot ${out.id} failed verification: ${problems.join('; ')}`);
    await rm(path.join(store, 'snapshots', out.id), { recursive: true, force: true });

    const start = Date.parse(c.consistent_at); // rdb: SYNC sent; keys: scan started
    const end = mode === 'keys' ? Date.parse(src.scan_finished_at) : Date.parse(c.started_at) + c.duration_ms;
    const transferS = (end - start) / 1000;
    const transferKps = mode === 'keys' ? src.keys_per_second : src.total_keys / transferS;
    const clientCpu = m.cpuUser + m.cpuSys;
    const redisCpu = redisAfter.self + redisAfter.children - redisBefore.self - redisBefore.children;
    const nodeKb = peakOf(m, 'node', 1);
    const facts =
      mode === 'keys'
        ? `total_keys=${src.total_keys} scanned=${src.scanned} vanished=${src.vanished_during_scan} skipped=${JSON.stringify(src.skipped_classes)} ` +
          `payload_rdb_version=${src.payload_rdb_version} expiry_source=${src.expiry_source} stream_bytes=${src.stream_bytes}`
        : `total_keys=${src.total_keys} rdb_version=${src.rdb_version} rdb_checksum=${src.rdb_checksum} transfer=${src.transfer}`;
    return {
      run: runNo, mode, seconds: m.seconds, keys: src.total_keys, transferKps, transferS,
      startupS: (start - m.spawnedAt) / 1000, finishS: (m.exitedAt - end) / 1000,
      plaintextBytes: a.plaintext_bytes, storedBytes: a.stored_bytes, peakKb: nodeKb, peakText: peakDetail(m),
      clientCpu, redisCpu, otherCpu: Math.max(0, o.busy - clientCpu - redisCpu - o.bench), quiet: true,
      facts: `snapshot ${out.id}: ${facts}; object ${a.name} ${a.stored_bytes} bytes, SHA-256 matches, decrypts to ${a.plaintext_bytes} bytes starting ${JSON.stringify(v.magic)}`,
    };
  }

  // ------------------------------------------------------------------ report (stdout)
  const out: string[] = [];
  out.push('tykdr key-level backup benchmark: mode keys against mode rdb, Redis with Tyk-like apikey-* sessions');
  out.push(...machine);
  const argv = process.argv.slice(2).map((a) => (/^[\w,.=/-]+$/.test(a) ? a : `'${a}'`));
  out.push(`command: npx tsx bench/redis-keys.ts ${argv.join(' ')}`);
  out.push(`tykdr: ${describeCheckout(tykdrRoot)}`);
  out.push(`keys: ${fmtInt(N)} (Redis used_memory ${mem}); both modes: node bin/run.js backup --json, local store, zstd level ${level}${level === 3 ? " (tykdr's default)" : ''}, one age recipient`);
  out.push(`mode rdb:  SYNC over the replication protocol (Redis forks and streams an RDB), parsed, compressed, encrypted, stored`);
  out.push(`mode keys: SCAN + pipelined DUMP/PEXPIRETIME (keys.batchSize 1000, tykdr's default), written as the TYKDRKEY record stream`);
  out.push(`rounds: ${runs} undisturbed wanted, at most ${maxRuns}; the order alternates; quiet wait up to ${quietWait} s before each run` +
    (notQuiet > 0 ? `; ${notQuiet} run(s) started on a machine that did not get quiet` : ''));
  out.push('');
  out.push('All runs (MB = 10^6 bytes; keys/s = keys / wall time; transfer = rdb: SYNC sent to object stored, keys: scan start to end;');
  out.push('peak RSS = tykdr\'s node process; CPU s redis includes its fork child; other = the rest of the machine\'s busy CPU,');
  out.push(`a row above ${DISTURBED_CPU_S} was disturbed):`);
  out.push(
    table(
      ['run', 'mode', 'seconds', 'keys/s', 'transfer s', 'transfer keys/s', 'plaintext MB', 'stored MB', 'peak RSS MB', 'CPU s tykdr', 'CPU s redis', 'CPU s other'],
      rows.map((x) => [
        String(x.run), x.mode, x.seconds.toFixed(2), fmtInt(x.keys / x.seconds), x.transferS.toFixed(2), fmtInt(x.transferKps), fmtMB(x.plaintextBytes),
        fmtMB(x.storedBytes), fmtMB(x.peakKb * 1024), x.clientCpu.toFixed(2), x.redisCpu.toFixed(2), x.otherCpu.toFixed(2),
      ]),
    ),
  );
  out.push('');
  const clean = (x: Row) => x.otherCpu <= DISTURBED_CPU_S;
  const rounds = [...new Set(rows.map((x) => x.run))];
  const okRounds = rounds.filter((r) => rows.filter((x) => x.run === r).every(clean));
  const used = okRounds.length > 0 ? okRounds : rounds;
  const pick = (mode: Mode) => rows.filter((x) => x.mode === mode && used.includes(x.run));
  const sum: string[][] = [];
  for (const mode of ['rdb', 'keys'] as const) {
    const xs = pick(mode);
    sum.push([
      mode, median(xs.map((x) => x.seconds)).toFixed(2), fmtInt(median(xs.map((x) => x.keys / x.seconds))), fmtInt(median(xs.map((x) => x.transferKps))),
      fmtMB(median(xs.map((x) => x.storedBytes))), fmtMB(Math.max(...rows.filter((x) => x.mode === mode).map((x) => x.peakKb * 1024))),
      median(xs.map((x) => x.clientCpu)).toFixed(2), median(xs.map((x) => x.redisCpu)).toFixed(2),
    ]);
  }
  const ratio = median(used.map((r) => rows.find((x) => x.run === r && x.mode === 'keys')!.seconds / rows.find((x) => x.run === r && x.mode === 'rdb')!.seconds));
  out.push(`Summary (medians over ${okRounds.length > 0 ? `the ${okRounds.length} undisturbed round(s) of ${rounds.length}` : `all ${rounds.length} rounds, none undisturbed`}; peak RSS = highest run):`);
  out.push(table(['mode', 'seconds', 'keys/s', 'transfer keys/s', 'stored MB', 'peak RSS MB', 'CPU s tykdr', 'CPU s redis'], sum));
  out.push(`keys mode takes ${ratio.toFixed(2)}x the wall time of rdb mode (median of per-round ratios).`);
  out.push('');
  out.push('Where the wall time goes (seconds; start-up = spawn to SYNC sent / scan start; finish = object stored to exit):');
  for (const x of rows) out.push(`  run ${x.run}, ${x.mode}: start-up ${x.startupS.toFixed(2)}, transfer ${x.transferS.toFixed(2)}, finish ${x.finishS.toFixed(2)} (total ${x.seconds.toFixed(2)})`);
  out.push('');
  out.push('Proof the backups were real (manifest, then the stored object read back, hashed and decrypted with age -d | zstd -d):');
  for (const x of rows) out.push(`  run ${x.run}, ${x.mode}: ${x.facts}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main);
