/**
 * Redis source modes side by side: `mode: keys` (SCAN + pipelined DUMP/PEXPIRETIME), `mode: rdb` (SYNC over the
 * replication protocol) and `mode: aof` (a copy of the AOF folder), against the raw tools that read the same data,
 * on one redis-server (AOF on) holding N Tyk-like `apikey-*` sessions. In one run, three sections:
 *
 *   1. reading only, to a plaintext file: `redis-cli --rdb FILE` and `tar` of appendonlydir against tykdr's three
 *      sources run alone (no compression, no encryption, no store; a small node script importing dist/);
 *   2. whole backups (zstd level L + age, to local disk): `redis-cli --rdb - | zstd | age` and
 *      `tar | zstd | age` against `tykdr backup` in each mode;
 *   3. restore of the keys stream (`tykdr restore --plan redis` of the keys-mode snapshot, every record RESTOREd into
 *      an empty redis-server) against redis-server loading the raw RDB of section 1.
 *
 * Wall and CPU seconds for every command (bash `times`, reaped children included), Redis's own CPU (its fork
 * child included), keys per second, bytes, tykdr's peak RSS. Prints figures; asserts nothing: exit 0 unless the
 * benchmark itself could not run (a backup or restore that fails, or a wrong key count, is such a failure).
 *
 *   npx tsx bench/redis-keys-throughput.ts [--keys 200000] [--runs 1] [--level 3] [--quiet-wait 180] [--tykdr-root DIR]
 *
 * Everything (redis-servers, temp folders) is started here and removed on exit, failure or Ctrl-C.
 * Needs dist/ (npm run build), redis-server, redis-cli, zstd, age, age-keygen, tar.
 * (It was a timing printed by an integration test, test/integration/redis-keys-throughput.test.ts, until the
 * suite stopped timing things.)
 */
import { existsSync } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  cpuSeconds, dbsize, describeCheckout, fillRedis, fmtInt, fmtMB, installCleanup, log, machineLines, measured, median, must,
  otherCpuStart, parseInfo, peakOf, repoRoot, runMain, sleep, startRedis, table, tempDir, waitQuiet, type Measured,
} from './lib.js';

installCleanup();

type Mode = 'keys' | 'rdb' | 'aof';
const MODES: Mode[] = ['keys', 'rdb', 'aof'];

interface Row {
  section: 'read' | 'backup' | 'restore';
  run: number;
  contender: string;
  seconds: number;
  keys: number;
  bytes: number;
  commandCpu: number;
  redisCpu: number;
  otherCpu: number;
  peakMb: number | null;
  note: string;
}

/** The reader: one tykdr source, alone, into a plaintext file; prints the source's facts as JSON. Imports the built dist/. */
function readerScript(root: string): string {
  const url = (p: string) => JSON.stringify(pathToFileURL(path.join(root, 'dist', p)).href);
  return `import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
const [mode, port, out] = process.argv.slice(2);
const { parseConfig } = await import(${url('core/config/load.js')});
const { KeysSource } = await import(${url('backends/redis/source/keys-source.js')});
const { RedisSource } = await import(${url('backends/redis/source/redis-source.js')});
const { AofSource } = await import(${url('backends/redis/source/aof-source.js')});
const yaml = 'store: { kind: local, path: /nonexistent }\\nencryption: { recipients: [] }\\ncomponents:\\n  redis:\\n    kind: redis\\n    host: 127.0.0.1\\n    port: ' + port + '\\n    mode: ' + mode + '\\n';
const component = parseConfig(yaml, 'bench-reader.yaml').components.redis;
const source = mode === 'keys' ? new KeysSource(component) : mode === 'aof' ? new AofSource(component) : new RedisSource(component);
const artifact = await source.open();
await pipeline(artifact.stream, createWriteStream(out));
const facts = await artifact.finish();
process.stdout.write(JSON.stringify(facts.source));
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '200000' },
      runs: { type: 'string', default: '1' },
      level: { type: 'string', default: '3' },
      'quiet-wait': { type: 'string', default: '180' },
      'tykdr-root': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx bench/redis-keys-throughput.ts [--keys 200000] [--runs 1] [--level 3] [--quiet-wait 180] [--tykdr-root DIR]\n');
    return;
  }
  const N = Number(values.keys!.replace(/_/g, ''));
  const runs = Number(values.runs);
  const level = Number(values.level);
  const quietWait = Number(values['quiet-wait']);
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(runs) || runs < 1) throw new Error(`bad --keys/--runs: ${values.keys} / ${values.runs}`);
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new Error(`bad --level ${values.level}: 1..19`);
  const tykdrRoot = path.resolve(values['tykdr-root'] ?? repoRoot);
  if (!existsSync(path.join(tykdrRoot, 'dist/commands/backup.js'))) throw new Error(`${tykdrRoot}/dist is missing: run npm run build`);
  const node = `'${process.execPath}' '${tykdrRoot}/bin/run.js'`;
  const machine = machineLines();
  for (const l of machine) log(l);

  const work = await tempDir('keys-tp');
  const store = path.join(work, 'store');
  const out = path.join(work, 'out');
  const identity = path.join(work, 'identity.txt');
  const reader = path.join(work, 'reader.mjs');
  const timesFile = path.join(work, 'times.txt');
  await must('mkdir', ['-p', out]);
  await writeFile(reader, readerScript(tykdrRoot));
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);

  log('starting redis-server (appendonly yes)');
  const redis = await startRedis({ extra: ['--appendonly', 'yes', '--repl-diskless-sync-delay', '0'] });
  const t = performance.now();
  log(`loading ${fmtInt(N)} keys through redis-cli --pipe`);
  await fillRedis(redis.port, 0, N);
  if ((await dbsize(redis.port)) !== N) throw new Error(`DBSIZE is not ${N} after loading`);
  // One rewrite: the AOF is then a base (RDB) file plus an empty incremental one, as a long-running server's would be.
  await redis.cli('BGREWRITEAOF');
  const persistence = async () => parseInfo(await redis.cli('INFO', 'persistence'));
  for (let p = await persistence(); p.aof_rewrite_in_progress !== '0' || p.aof_rewrite_scheduled !== '0'; p = await persistence()) await sleep(50);
  const mem = /used_memory_human:(\S+)/.exec(await redis.cli('INFO', 'memory'))?.[1];
  log(`${fmtInt(N)} keys loaded and the AOF rewritten in ${((performance.now() - t) / 1000).toFixed(1)} s; Redis used_memory ${mem}`);

  const configFile = (mode: Mode, extra = '') => {
    const f = path.join(work, `${mode}.yaml`);
    return writeFile(
      f,
      `store:\n  kind: local\n  path: ${store}\nencryption:\n  recipients: [${recipient}]\n  identityFile: ${identity}\ncompression:\n  algorithm: zstd\n  level: ${level}\n` +
        `restore:\n  stagingDir: ${path.join(work, 'staging')}\n  reportDir: ${path.join(work, 'reports')}\n` +
        `components:\n  redis:\n    kind: redis\n    mode: ${mode}\n    host: 127.0.0.1\n    port: ${redis.port}\n${extra}`,
    ).then(() => f);
  };

  const rows: Row[] = [];
  let notQuiet = 0;
  /** One command under measure: wall, CPU of the command and of the source redis-server, everything else's CPU. */
  async function timed(script: string): Promise<{ m: Measured; redisCpu: number; otherCpu: number }> {
    const q = await waitQuiet(quietWait);
    if (!q.quiet && quietWait > 0) notQuiet++;
    const before = cpuSeconds(redis.pid, { strict: true });
    const other = otherCpuStart();
    const m = await measured(script, { timesFile });
    if (m.code !== 0) throw new Error(`exited ${m.code}: ${script}\n${(m.stderr || m.stdout).trim().slice(-3000)}`);
    await sleep(1000); // Redis reaps its fork child (rdb, aof rewrite) before its CPU is read
    const after = cpuSeconds(redis.pid, { strict: true });
    const redisCpu = after.self + after.children - before.self - before.children;
    const o = other();
    return { m, redisCpu, otherCpu: Math.max(0, o.busy - (m.cpuUser + m.cpuSys) - redisCpu - o.bench) };
  }
  const add = (r: Omit<Row, 'commandCpu' | 'otherCpu'>, x: { m: Measured; otherCpu: number }) => {
    const row: Row = { ...r, commandCpu: x.m.cpuUser + x.m.cpuSys, otherCpu: x.otherCpu };
    rows.push(row);
    log(`  ${row.section} ${row.contender}: ${row.seconds.toFixed(2)} s = ${fmtInt(row.keys / row.seconds)} keys/s, ${fmtMB(row.bytes)} MB, CPU ${row.commandCpu.toFixed(2)} s (redis ${row.redisCpu.toFixed(2)})`);
  };
  const size = async (f: string) => (await stat(f)).size;

  let keysSnapshot = '';
  for (let run = 1; run <= runs; run++) {
    // ---- 1. reading only
    log(`run ${run} of ${runs}: reading only`);
    const rawRdb = path.join(out, 'dump.rdb');
    let x = await timed(`redis-cli -h 127.0.0.1 -p ${redis.port} --rdb '${rawRdb}' >/dev/null`);
    add({ section: 'read', run, contender: 'redis-cli --rdb', seconds: x.m.seconds, keys: N, bytes: await size(rawRdb), redisCpu: x.redisCpu, peakMb: null, note: 'raw RDB over SYNC' }, x);
    const rawTar = path.join(out, 'aof.tar');
    x = await timed(`tar -cf '${rawTar}' -C '${redis.dir}' appendonlydir`);
    add({ section: 'read', run, contender: 'tar appendonlydir', seconds: x.m.seconds, keys: N, bytes: await size(rawTar), redisCpu: x.redisCpu, peakMb: null, note: 'raw copy of the AOF folder (no rewrite guard)' }, x);
    await rm(rawTar, { force: true });
    for (const mode of MODES) {
      const file = path.join(out, `source.${mode}`);
      x = await timed(`'${process.execPath}' '${reader}' ${mode} ${redis.port} '${file}'`);
      const facts = JSON.parse(x.m.stdout) as Record<string, any>;
      const keys = mode === 'aof' ? Number(facts.databases?.['0']?.keys) : Number(facts.total_keys);
      if (keys !== N) throw new Error(`the ${mode} source read ${keys} keys, not ${N}: ${x.m.stdout.slice(0, 500)}`);
      add({ section: 'read', run, contender: `tykdr source ${mode}`, seconds: x.m.seconds, keys, bytes: await size(file), redisCpu: x.redisCpu, peakMb: peakOf(x.m, 'node', 1) / 1024, note: 'plaintext, no store' }, x);
      await rm(file, { force: true });
    }

    // ---- 2. whole backups
    log(`run ${run} of ${runs}: backups (zstd ${level} + age)`);
    const rawAge = path.join(out, 'raw.age');
    x = await timed(`redis-cli -h 127.0.0.1 -p ${redis.port} --rdb - 2>/dev/null | zstd -${level} -q | age -r '${recipient}' > '${rawAge}'`);
    add({ section: 'backup', run, contender: 'redis-cli --rdb - | zstd | age', seconds: x.m.seconds, keys: N, bytes: await size(rawAge), redisCpu: x.redisCpu, peakMb: null, note: 'stored bytes' }, x);
    x = await timed(`tar -cf - -C '${redis.dir}' appendonlydir | zstd -${level} -q | age -r '${recipient}' > '${rawAge}'`);
    add({ section: 'backup', run, contender: 'tar | zstd | age', seconds: x.m.seconds, keys: N, bytes: await size(rawAge), redisCpu: x.redisCpu, peakMb: null, note: 'stored bytes' }, x);
    await rm(rawAge, { force: true });
    for (const mode of MODES) {
      x = await timed(`${node} backup -c '${await configFile(mode)}' --json`);
      const res = JSON.parse(x.m.stdout) as { id: string; manifest: any };
      const c = res.manifest.components.redis;
      const keys = mode === 'aof' ? Number(c.source.databases?.['0']?.keys) : Number(c.source.total_keys);
      if (keys !== N) throw new Error(`tykdr backup (mode ${mode}) has ${keys} keys in its manifest, not ${N}`);
      add(
        {
          section: 'backup', run, contender: `tykdr backup mode ${mode}`, seconds: x.m.seconds, keys, bytes: c.artifact.stored_bytes, redisCpu: x.redisCpu,
          peakMb: peakOf(x.m, 'node', 1) / 1024, note: `stored bytes (plaintext ${fmtMB(c.artifact.plaintext_bytes)} MB), snapshot ${res.id}`,
        },
        x,
      );
      if (mode === 'keys') {
        if (keysSnapshot) await rm(path.join(store, 'snapshots', keysSnapshot), { recursive: true, force: true });
        keysSnapshot = res.id;
      } else await rm(path.join(store, 'snapshots', res.id), { recursive: true, force: true });
    }

    // ---- 3. restore of the keys stream, against redis-server loading the raw RDB
    log(`run ${run} of ${runs}: restores`);
    const target = await startRedis();
    const restoreConfig = await configFile('keys', `    restore:\n      target: { host: 127.0.0.1, port: ${target.port} }\n`);
    const targetBefore = cpuSeconds(target.pid, { strict: true });
    x = await timed(`${node} restore --plan redis --snapshot ${keysSnapshot} --yes --json -c '${restoreConfig}'`);
    const report = (JSON.parse(x.m.stdout) as { report: any }).report;
    if (report.status !== 'succeeded') throw new Error(`the keys restore did not succeed: ${JSON.stringify(report.steps.map((s: any) => [s.id, s.status, s.reason]))}`);
    const d = report.steps.find((s: any) => s.component === 'redis').details.redis;
    const restored = await dbsize(target.port);
    if (restored !== N) throw new Error(`the keys restore left DBSIZE ${restored}, not ${N}`);
    const targetAfter = cpuSeconds(target.pid, { strict: true });
    add(
      {
        section: 'restore', run, contender: 'tykdr restore (keys stream)', seconds: x.m.seconds, keys: restored, bytes: 0,
        redisCpu: targetAfter.self + targetAfter.children - targetBefore.self - targetBefore.children, peakMb: peakOf(x.m, 'node', 1) / 1024,
        note: `RESTORE phase: ${fmtInt(d.keys_restored)} keys in ${(d.write_ms / 1000).toFixed(2)} s = ${fmtInt(d.keys_per_second)} keys/s; the rest is staging, the validation pass and the checks`,
      },
      x,
    );
    await target.stop();
    await rm(path.join(work, 'reports'), { recursive: true, force: true });
    await rm(path.join(store, 'reports'), { recursive: true, force: true });

    // The raw counterpart: redis-server started on the raw RDB, timed until INFO says loading:0 (polled every 20 ms).
    await waitQuiet(quietWait);
    const loadDir = await tempDir('keys-tp-load');
    await must('mv', [rawRdb, path.join(loadDir, 'dump.rdb')]);
    const other = otherCpuStart();
    const t0 = performance.now();
    const loaded = await startRedis({ dir: loadDir, extra: ['--dbfilename', 'dump.rdb'] });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(loaded.pid, { strict: true });
    const keys = await dbsize(loaded.port);
    const o = other();
    await loaded.stop();
    await rm(loadDir, { recursive: true, force: true });
    if (keys !== N) throw new Error(`redis-server loaded ${keys} keys from the raw RDB, not ${N}`);
    rows.push({
      section: 'restore', run, contender: 'redis-server loads the RDB', seconds, keys, bytes: 0, commandCpu: cpu.self + cpu.children, redisCpu: 0,
      otherCpu: Math.max(0, o.busy - cpu.self - cpu.children - o.bench), peakMb: null, note: 'spawn until INFO loading:0; CPU is the server\'s',
    });
    log(`  restore redis-server loads the RDB: ${seconds.toFixed(2)} s`);
  }

  // ------------------------------------------------------------------ report (stdout)
  const lines: string[] = [];
  lines.push('tykdr Redis source modes: keys, rdb and aof against the raw tools, Redis with Tyk-like apikey-* sessions');
  lines.push(...machine);
  const argv = process.argv.slice(2).map((a) => (/^[\w,.=/-]+$/.test(a) ? a : `'${a}'`));
  lines.push(`command: npx tsx bench/redis-keys-throughput.ts ${argv.join(' ')}`);
  lines.push(`tykdr: ${describeCheckout(tykdrRoot)}`);
  lines.push(`keys: ${fmtInt(N)} (Redis used_memory ${mem}, appendonly yes, AOF rewritten once before the runs); zstd level ${level}; one age recipient; local disk`);
  lines.push(`runs: ${runs}; quiet wait up to ${quietWait} s before each command${notQuiet > 0 ? `; ${notQuiet} command(s) started on a machine that did not get quiet` : ''}`);
  lines.push('');
  lines.push('MB = 10^6 bytes (written, or stored for backups); keys/s = keys / wall seconds; CPU s = the command\'s own (its children');
  lines.push('included); redis = the source redis-server\'s (its fork child included; for the tykdr restore, the target\'s); other = the rest');
  lines.push('of the machine (above 0.5 the row was disturbed); peak RSS = tykdr\'s node process. Medians over the runs.');
  const sections: Array<[Row['section'], string]> = [
    ['read', '1. Reading only (to a plaintext file)'],
    ['backup', `2. Whole backups (zstd ${level} + age, local disk)`],
    ['restore', '3. Restores into an empty redis-server'],
  ];
  for (const [section, title] of sections) {
    lines.push('');
    lines.push(`${title}:`);
    const names = [...new Set(rows.filter((r) => r.section === section).map((r) => r.contender))];
    lines.push(
      table(
        ['contender', 'seconds', 'keys/s', 'MB', 'CPU s', 'CPU s redis', 'CPU s other', 'peak RSS MB'],
        names.map((n) => {
          const xs = rows.filter((r) => r.section === section && r.contender === n);
          const med = (f: (r: Row) => number) => median(xs.map(f));
          const peaks = xs.map((r) => r.peakMb).filter((p): p is number => p !== null);
          return [
            n, med((r) => r.seconds).toFixed(2), fmtInt(med((r) => r.keys / r.seconds)), section === 'restore' ? '' : fmtMB(med((r) => r.bytes)),
            med((r) => r.commandCpu).toFixed(2), med((r) => r.redisCpu).toFixed(2), med((r) => r.otherCpu).toFixed(2), peaks.length ? Math.max(...peaks).toFixed(1) : '',
          ];
        }),
      ),
    );
    for (const n of names) {
      const notes = [...new Set(rows.filter((r) => r.section === section && r.contender === n).map((r) => r.note.replace(/, snapshot \S+$/, '')))];
      lines.push(`  ${n}: ${notes.join(' | ')}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await runMain(main);
