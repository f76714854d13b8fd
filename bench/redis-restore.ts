/**
 * Restore benchmark: `tykdr restore --plan redis` of a snapshot holding N Tyk-like `apikey-*` sessions, in one run:
 *
 *   baseline        age -d -i id OBJECT | zstd -d -q -o DIR/dump.rdb, then redis-server --dir DIR --dbfilename
 *                   dump.rdb, timed from start until INFO persistence says loading:0
 *   tykdr-rdb-file  restore.mode rdb-file into a running (empty) redis-server: stage (SHA-256, age, zstd), stop,
 *                   place dump.rdb, start, wait until loaded; plan redis's checks (key counts, 100-key sample, TTLs)
 *   tykdr-rdb-min   the same with the least verification tykdr allows: a plan with only redis-ping, restore.sample 0
 *   tykdr-live      restore.mode live into an empty running redis-server (values cut from the staged RDB: strings sent as
 *                   SET key value PXAT ms, other types RESTOREd; before that, every key RESTOREd, and before that a scratch
 *                   server loaded the RDB and keys were copied with DUMP/RESTORE); keys per second from the report's copy phase
 *   tykdr-live-repl restore.mode live with restore.load replication into an empty running redis-server: the target loads
 *                   the staged RDB as a replica of tykdr, then is made a master again; keys per second from the load phase
 *   raw-pipe        the raw-tools side of the live copy: `redis-cli --pipe` of the same commands tykdr-live sends (`SET
 *                   key value PXAT ms` for a string, `RESTORE key ttl payload REPLACE ABSTTL` for the rest; written before the
 *                   timed runs from DUMP and PEXPIRETIME of every key of the source) into an empty running redis-server: how fast Redis itself takes them from a
 *                   client that does no work of its own (C, reading a file), the bar for tykdr-live's copy phase
 *
 * Prints figures and PASS/MISS against the issue's targets (rdb-file within 1.15x of the baseline; live mode at
 * least 50,000 keys/s); asserts nothing (exit 0 unless the benchmark itself could not run).
 *
 *   npx tsx bench/redis-restore.ts [--keys 1000000] [--runs 1] [--max-runs 3R] [--level 3] [--quiet-wait 180]
 *       [--contenders baseline,tykdr-rdb-file,tykdr-rdb-min,tykdr-live,tykdr-live-repl,raw-pipe] [--tykdr-root DIR]
 *       [--node-args="..."] [--target-delay MS]
 *
 * --target-delay MS puts each target a network away: tykdr reaches it through a proxy (bench/lib.ts delayProxy) that
 * holds every chunk MS milliseconds each way. The baseline, the stop and start commands and the checks of this
 * benchmark go straight to the servers.
 * --node-args passes flags to tykdr's node for its restores (not the backup that makes the snapshot); write the "=",
 * e.g. --node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (bench/cpuprofile-top.ts summarizes a .cpuprofile).
 *
 * Everything (redis-servers, temp folders) is started here and removed on exit, failure or Ctrl-C.
 * Needs dist/ (npm run build), redis-server, redis-cli, zstd, age, age-keygen (bash scripts/tools.sh);
 * bench/restore-run.sh does all of that.
 */
import { createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { Redis as IORedis } from 'ioredis';
import { CommandEncoder } from '../src/backends/redis/protocol/resp-pipe.js';
import { PayloadString } from '../src/backends/redis/formats/string-value.js';
import {
  cpuSeconds, dbsize, delayProxy, describeCheckout, fillRedis, fmtInt, fmtMB, freePort, installCleanup, loadState, log, machineLines,
  measured, median, must, otherCpuStart, peakDetail, peakOf, REDIS_ARGS, redisCall, repoRoot, runMain, sleep, startRedis, table, tempDir,
  track, trackPidFile, vmHwmKb, waitQuiet,
} from './lib.js';

installCleanup();

const TARGET_RATIO = 1.15;
const TARGET_KEYS_PER_S = 50_000;
const DISTURBED_CPU_S = 0.5;
const CONTENDERS = ['baseline', 'tykdr-rdb-file', 'tykdr-rdb-min', 'tykdr-live', 'tykdr-live-repl', 'raw-pipe'] as const;
const isLive = (c: string) => c === 'tykdr-live' || c === 'tykdr-live-repl';
type Contender = (typeof CONTENDERS)[number];
type TykdrContender = Exclude<Contender, 'baseline' | 'raw-pipe'>;

interface Row {
  run: number;
  contender: Contender;
  seconds: number;
  keys: number;
  /** node's peak RSS (tykdr) or age + zstd summed (baseline), kB */
  peakKb: number;
  /** tykdr's scratch redis-server, kB (live; rdb-file for its sample) */
  scratchKb: number;
  /** the restored redis-server's VmHWM after loading, kB */
  targetKb: number;
  peakText: string;
  commandCpu: number;
  targetCpu: number;
  otherCpu: number;
  quiet: boolean;
  /** baseline: decompress, load; tykdr: from the report */
  parts: Record<string, number>;
  checks: string;
  copied?: number;
  copyMs?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '1000000' },
      runs: { type: 'string', default: '1' },
      'max-runs': { type: 'string' },
      level: { type: 'string', default: '3' },
      'quiet-wait': { type: 'string', default: '180' },
      contenders: { type: 'string', default: CONTENDERS.join(',') },
      'tykdr-root': { type: 'string' },
      'summary-json': { type: 'string' },
      'node-args': { type: 'string', default: '' },
      'target-delay': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npx tsx bench/redis-restore.ts [--keys 1000000] [--runs 1] [--max-runs 3R] [--level 3] [--quiet-wait 180]\n' +
        `    [--contenders ${CONTENDERS.join(',')}] [--tykdr-root DIR] [--summary-json FILE] [--node-args="..."] [--target-delay MS]\n`,
    );
    return;
  }
  const N = Number(values.keys!.replace(/_/g, ''));
  const runs = Number(values.runs);
  const maxRuns = Number(values['max-runs'] ?? 3 * runs);
  const level = Number(values.level);
  const quietWait = Number(values['quiet-wait']);
  const contenders = values.contenders!.split(',').filter(Boolean) as Contender[];
  for (const c of contenders) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender ${c}: use ${CONTENDERS.join(', ')}`);
  if (!contenders.includes('baseline')) throw new Error('--contenders must include baseline');
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(maxRuns) || maxRuns < runs) {
    throw new Error(`bad --keys/--runs/--max-runs: ${values.keys} / ${values.runs} / ${values['max-runs']}`);
  }
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new Error(`bad --level ${values.level}: 1..19`);
  const targetDelay = Number(values['target-delay']);
  if (!Number.isFinite(targetDelay) || targetDelay < 0) throw new Error(`bad --target-delay ${values['target-delay']}: milliseconds each way, >= 0`);
  const tykdrRoot = path.resolve(values['tykdr-root'] ?? repoRoot);
  if (!existsSync(path.join(tykdrRoot, 'dist/commands/restore.js'))) throw new Error(`${tykdrRoot}/dist is missing: run npm run build`);
  const node = `'${process.execPath}' '${tykdrRoot}/bin/run.js'`;
  const nodeArgs = values['node-args']!.split(/\s+/).filter(Boolean);
  const restoreNode = `'${process.execPath}' ${nodeArgs.map((a) => `'${a}'`).join(' ')} '${tykdrRoot}/bin/run.js'`;
  const machine = machineLines();
  for (const l of machine) log(l);

  // ------------------------------------------------------------------ source, identity, one backup
  const work = await tempDir('restore');
  const store = path.join(work, 'store');
  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  log('starting the source redis-server');
  const source = await startRedis();
  let t = performance.now();
  log(`loading ${fmtInt(N)} keys through redis-cli --pipe`);
  await fillRedis(source.port, 0, N);
  if ((await dbsize(source.port)) !== N) throw new Error(`source DBSIZE is not ${N} after loading`);
  const mem = /used_memory_human:(\S+)/.exec(await source.cli('INFO', 'memory'))?.[1];
  log(`${fmtInt(N)} keys loaded in ${((performance.now() - t) / 1000).toFixed(1)} s; Redis used_memory ${mem}`);

  // Targets: the rdb-file target runs as a daemon started by the same command tykdr's startCommand runs.
  const fileDir = path.join(work, 'target-file');
  await mkdir(fileDir);
  const filePort = await freePort();
  const startCommand = `redis-server --port ${filePort} ${REDIS_ARGS.map((a) => (a === '' ? "''" : a)).join(' ')} --dir ${fileDir} --dbfilename dump.rdb --daemonize yes --pidfile ${fileDir}/redis.pid --logfile ${fileDir}/redis.log`;
  const stopCommand = `redis-cli -p ${filePort} shutdown nosave`;
  trackPidFile(path.join(fileDir, 'redis.pid'));
  const live = contenders.includes('tykdr-live') ? await startRedis() : null;
  const liveRepl = contenders.includes('tykdr-live-repl') ? await startRedis() : null;
  const pipeTarget = contenders.includes('raw-pipe') ? await startRedis() : null;
  const liveServer = (c: Contender) => (c === 'tykdr-live' ? live : c === 'tykdr-live-repl' ? liveRepl : null);
  if (contenders.some((c) => c.startsWith('tykdr-rdb'))) {
    await must('bash', ['-c', startCommand]);
    await waitUp(filePort, 30_000);
  }

  // --target-delay: tykdr reaches each target through a proxy that holds every chunk that long each way (a target a
  // network away; the stop and start commands and the benchmark's own checks go straight to the server).
  const reach = async (port: number) => (targetDelay > 0 ? (await delayProxy({ host: '127.0.0.1', port }, targetDelay)).port : port);
  const fileReach = await reach(filePort);
  const liveReach = live ? await reach(live.port) : 1;
  const liveReplReach = liveRepl ? await reach(liveRepl.port) : 1;
  const common = (restore: string) =>
    `store:\n  kind: local\n  path: ${store}\nencryption:\n  recipients: [${recipient}]\n  identityFile: ${identity}\n` +
    `compression:\n  algorithm: zstd\n  level: ${level}\n` +
    `restore:\n  stagingDir: ${path.join(work, 'staging')}\n  reportDir: ${path.join(work, 'reports')}\n` +
    `components:\n  redis:\n    kind: redis\n    host: 127.0.0.1\n    port: ${source.port}\n    restore:\n${restore}`;
  const fileRestore = (extra = '') =>
    `      mode: rdb-file\n      target: { host: 127.0.0.1, port: ${fileReach} }\n      dataDir: ${fileDir}\n` +
    `      stopCommand: ${JSON.stringify(stopCommand)}\n      startCommand: ${JSON.stringify(startCommand)}\n      loadTimeout: 30m\n${extra}`;
  const configs: Record<TykdrContender, string> = {
    'tykdr-rdb-file': path.join(work, 'rdb-file.yaml'),
    'tykdr-rdb-min': path.join(work, 'rdb-min.yaml'),
    'tykdr-live': path.join(work, 'live.yaml'),
    'tykdr-live-repl': path.join(work, 'live-repl.yaml'),
  };
  await writeFile(configs['tykdr-rdb-file'], common(fileRestore()));
  await writeFile(configs['tykdr-rdb-min'], common(fileRestore('      sample: 0\n')));
  await writeFile(configs['tykdr-live'], common(`      mode: live\n      target: { host: 127.0.0.1, port: ${liveReach} }\n`));
  await writeFile(configs['tykdr-live-repl'], common(`      mode: live\n      load: replication\n      target: { host: 127.0.0.1, port: ${liveReplReach} }\n`));
  const minPlan = path.join(work, 'plan-redis-min.yaml');
  await writeFile(
    minPlan,
    'version: 1\nname: redis-min\ndescription: plans/redis.yaml with only redis-ping (the benchmark\'s least-verification variant)\n' +
      'steps:\n  - id: redis\n    component: redis\n    action: restore\n    verify: [redis-ping]\n    timeout: 30m\n    on_error: stop\n',
  );

  log(`tykdr backup (local store, zstd level ${level}, one age recipient)`);
  t = performance.now();
  const backup = JSON.parse(await must('bash', ['-c', `${node} backup -c '${configs['tykdr-rdb-file']}' --json`], { cwd: repoRoot })) as { id: string; manifest: any };
  const comp = backup.manifest.components.redis;
  if (comp.source.total_keys !== N) throw new Error(`backup manifest says total_keys ${comp.source.total_keys}, expected ${N}`);
  const object = path.join(store, 'snapshots', backup.id, comp.artifact.name);
  const rdbBytes: number = comp.artifact.plaintext_bytes;
  const storedBytes: number = comp.artifact.stored_bytes;
  log(`snapshot ${backup.id} in ${((performance.now() - t) / 1000).toFixed(1)} s: RDB ${fmtMB(rdbBytes)} MB stored as ${fmtMB(storedBytes)} MB (${comp.artifact.name})`);
  const respFile = path.join(work, 'restore.resp');
  if (pipeTarget) {
    log('raw-pipe: writing the SET/RESTORE commands of every key (DUMP and PEXPIRETIME on the source; untimed)');
    t = performance.now();
    const written = await writeRestoreCommands(source.port, respFile);
    if (written.keys !== N) throw new Error(`raw-pipe: SCAN gave ${written.keys} keys, the source has ${N}`);
    log(`raw-pipe: ${fmtInt(written.keys)} SET/RESTORE commands, ${fmtMB(written.bytes)} MB, in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  await source.stop(); // the restores never read it; frees its memory

  // ------------------------------------------------------------------ timed runs
  const rows: Row[] = [];
  const timesFile = path.join(work, 'times.txt');
  // One untimed restore first: a command's first run after a build has no V8 code cache yet (bin/code-cache.js writes it
  // at that run's exit) and starts about 80 ms slower. Every contender runs `tykdr restore`, one cache: this run's start-up
  // path is what they share (a mode's own functions the cache lacks compile as they first run, in any contender).
  const warmUp = contenders.find((c): c is TykdrContender => c.startsWith('tykdr-'));
  if (warmUp) {
    log(`untimed warm-up run (the restore command's code cache): ${warmUp}`);
    await must('sync', []);
    await runTykdr(warmUp, 0);
  }
  let notQuiet = 0;
  let cleanRounds = 0;
  for (let r = 1; cleanRounds < runs && r <= maxRuns; r++) {
    const order = r % 2 === 1 ? contenders : [...contenders].reverse();
    let disturbed = false;
    for (const c of order) {
      log(`round ${r} (${cleanRounds} of ${runs} clean so far, at most ${maxRuns}): ${c}`);
      // The run before wrote a 690 MB file: its dirty pages are flushed now, so no run pays for another's writeback.
      await must('sync', []);
      const q = await waitQuiet(quietWait);
      if (!q.quiet && quietWait > 0) notQuiet++;
      const row = c === 'baseline' ? await runBaseline(r) : c === 'raw-pipe' ? await runPipe(r) : await runTykdr(c, r);
      row.quiet = q.quiet;
      disturbed ||= row.otherCpu > DISTURBED_CPU_S;
      log(
        `  ${row.seconds.toFixed(2)} s; DBSIZE ${fmtInt(row.keys)} (ok); peak RSS ${row.peakText}; CPU: command ${row.commandCpu.toFixed(2)}, ` +
          `target redis ${row.targetCpu.toFixed(2)}, other processes ${row.otherCpu.toFixed(2)}${row.otherCpu > DISTURBED_CPU_S ? ': disturbed' : ''}`,
      );
      rows.push(row);
    }
    if (!disturbed) cleanRounds++;
  }

  async function runBaseline(runNo: number): Promise<Row> {
    const dir = path.join(work, 'baseline');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    const port = await freePort();
    const other = otherCpuStart();
    const t0 = performance.now();
    const m = await measured(`age -d -i '${identity}' '${object}' | zstd -d -q -o '${dir}/dump.rdb'`, { timesFile });
    if (m.code !== 0) throw new Error(`baseline pipeline exited ${m.code}: ${m.stderr.trim().slice(-2000)}`);
    const t1 = performance.now();
    const child = track(
      spawn('redis-server', ['--port', String(port), ...REDIS_ARGS, '--dir', dir, '--dbfilename', 'dump.rdb', '--daemonize', 'no', '--logfile', `${dir}/redis.log`], {
        stdio: 'ignore',
      }),
    );
    for (;;) {
      if (child.exitCode !== null) throw new Error(`baseline redis-server exited ${child.exitCode}: ${readFileSync(`${dir}/redis.log`, 'utf8').slice(-2000)}`);
      if ((await loadState(port)) === 'up') break;
      if (performance.now() - t0 > 1_800_000) throw new Error('baseline redis-server did not load within 30 min');
      await sleep(10);
    }
    const t2 = performance.now();
    const targetCpu = cpuSeconds(child.pid!).self;
    const targetKb = vmHwmKb(child.pid!) ?? 0;
    await sleep(1000); // let the tail of the load's work settle before reading the machine's busy time
    const o = other();
    const keys = await dbsize(port);
    if (keys !== N) throw new Error(`baseline: DBSIZE ${keys} after loading, expected ${N}`);
    await redisCall(port, ['SHUTDOWN', 'NOSAVE']).catch(() => undefined);
    while (child.exitCode === null && child.signalCode === null) await sleep(20);
    await rm(dir, { recursive: true, force: true });
    const commandCpu = m.cpuUser + m.cpuSys;
    return {
      run: runNo, contender: 'baseline', seconds: (t2 - t0) / 1000, keys,
      peakKb: [...m.peaks.values()].filter((p) => p.comm !== 'bash').reduce((a, p) => a + p.kb, 0), scratchKb: 0, targetKb,
      peakText: `${peakDetail(m)}; redis-server ${fmtMB(targetKb * 1024)} after loading`,
      commandCpu, targetCpu, otherCpu: Math.max(0, o.busy - commandCpu - targetCpu - o.bench), quiet: true,
      parts: { decompress: (t1 - t0) / 1000, load: (t2 - t1) / 1000 }, checks: 'none',
    };
  }

  async function runPipe(runNo: number): Promise<Row> {
    const target = pipeTarget!;
    if ((await dbsize(target.port)) !== 0) throw new Error('raw-pipe: the target is not empty before the run');
    const cpuBefore = cpuSeconds(target.pid).self;
    const other = otherCpuStart();
    const m = await measured(`redis-cli -h 127.0.0.1 -p ${target.port} --pipe < '${respFile}'`, { timesFile });
    const replies = /errors: (\d+), replies: (\d+)/.exec(m.stdout);
    if (m.code !== 0 || !replies || replies[1] !== '0' || Number(replies[2]) !== N) {
      throw new Error(`raw-pipe: redis-cli --pipe exited ${m.code}: ${(m.stdout + m.stderr).trim().slice(-1000)}`);
    }
    const targetCpu = cpuSeconds(target.pid).self - cpuBefore;
    const targetKb = vmHwmKb(target.pid) ?? 0;
    await sleep(1000);
    const o = other();
    const keys = await dbsize(target.port);
    if (keys !== N) throw new Error(`raw-pipe: target DBSIZE ${keys} after redis-cli --pipe, expected ${N}`);
    await redisCall(target.port, ['FLUSHALL'], 120_000);
    const commandCpu = m.cpuUser + m.cpuSys;
    return {
      run: runNo, contender: 'raw-pipe', seconds: m.seconds, keys, peakKb: peakOf(m, 'redis-cli', 1), scratchKb: 0, targetKb,
      peakText: `redis-cli ${fmtMB(peakOf(m, 'redis-cli', 1) * 1024)}; target redis-server ${fmtMB(targetKb * 1024)}`,
      commandCpu, targetCpu, otherCpu: Math.max(0, o.busy - commandCpu - targetCpu - o.bench), quiet: true,
      parts: { pipe: m.seconds }, checks: 'none (redis-cli counted N replies, no error; DBSIZE after)', copied: N, copyMs: m.seconds * 1000,
    };
  }

  async function runTykdr(c: TykdrContender, runNo: number): Promise<Row> {
    const liveTarget = liveServer(c);
    const targetPort = liveTarget ? liveTarget.port : filePort;
    if ((await dbsize(targetPort)) !== 0) throw new Error(`${c}: the target is not empty before the run`);
    const plan = c === 'tykdr-rdb-min' ? minPlan : 'redis';
    const livePidBefore = liveTarget ? cpuSeconds(liveTarget.pid).self : 0;
    const other = otherCpuStart();
    const m = await measured(`${restoreNode} restore --plan '${plan}' --snapshot ${backup.id} --yes --json -c '${configs[c]}'`, { timesFile });
    let out: { report: any } | null = null;
    try {
      out = JSON.parse(m.stdout);
    } catch {
      // reported below
    }
    if (m.code !== 0 || out?.report?.status !== 'succeeded') {
      const failed = out?.report?.steps?.map((s: any) => `${s.id} ${s.status}${s.reason ? `: ${s.reason}` : ''}`).join('; ');
      throw new Error(`${c} exited ${m.code}${failed ? ` (${failed})` : ''}:\n${(m.stderr || m.stdout).trim().slice(-3000)}`);
    }
    let targetPid: number;
    if (liveTarget) targetPid = liveTarget.pid;
    else targetPid = Number(readFileSync(path.join(fileDir, 'redis.pid'), 'utf8').trim());
    const targetCpu = liveTarget ? cpuSeconds(targetPid).self - livePidBefore : cpuSeconds(targetPid).self;
    const targetKb = vmHwmKb(targetPid) ?? 0;
    await sleep(1000);
    const o = other();
    const keys = await dbsize(targetPort);
    if (keys !== N) throw new Error(`${c}: target DBSIZE ${keys} after the restore, expected ${N}`);
    // Untimed reset for the next run: empty the target, drop the previous dump.rdb tykdr kept aside.
    await redisCall(targetPort, ['FLUSHALL'], 120_000);
    if (!isLive(c)) for (const f of readdirSync(fileDir)) if (f.includes('.tykdr-')) await rm(path.join(fileDir, f), { force: true });
    await rm(path.join(work, 'reports'), { recursive: true, force: true });
    await rm(path.join(store, 'reports'), { recursive: true, force: true });

    const report = out.report;
    const stage = report.steps.find((s: any) => s.id === 'stage');
    const step = report.steps.find((s: any) => s.component === 'redis');
    const d = step.details.redis;
    const checksMs = step.checks.reduce((a: number, x: any) => a + x.durationMs, 0);
    const parts: Record<string, number> = {
      'start-up': (Date.parse(report.started_at) - m.spawnedAt) / 1000,
      'before stage': (Date.parse(stage.startedAt) - Date.parse(report.started_at)) / 1000,
      stage: stage.durationMs / 1000,
      // the step: preflight and (with redis-key-counts) a read of the whole RDB for the expected counts, then the mode, then the checks
      'step before mode': (step.durationMs - d.restore_ms - checksMs) / 1000,
      mode: d.restore_ms / 1000,
    };
    if (c === 'tykdr-live-repl') {
      parts['  load by replication'] = d.replication_load_ms / 1000;
      parts['  promote + sample'] = (d.restore_ms - d.replication_load_ms) / 1000;
    } else if (c === 'tykdr-live') {
      parts['  copy'] = (d.write_ms ?? d.copy_ms) / 1000;
    } else {
      parts['  scratch for sample + swap'] = (d.restore_ms - d.stop_ms - d.start_ms) / 1000;
      parts['  stop'] = d.stop_ms / 1000;
      parts['  start until loaded'] = d.start_ms / 1000; // startCommand until INFO loading:0, polled every 25 ms (rdb-file-swap.ts POLL_MS)
    }
    parts.checks = checksMs / 1000;
    parts['after steps'] = (m.exitedAt - Date.parse(report.finished_at)) / 1000;
    const warnings: string[] = [...(d.warnings ?? []), ...(report.warnings ?? [])];
    const commandCpu = m.cpuUser + m.cpuSys;
    const nodeKb = peakOf(m, 'node', 1);
    const scratchKb = peakOf(m, 'redis-server', 2); // node's own child; the startCommand's redis-server runs under sh (depth 3) until it daemonizes
    return {
      run: runNo, contender: c, seconds: m.seconds, keys, peakKb: nodeKb, scratchKb, targetKb,
      peakText: `node ${fmtMB(nodeKb * 1024)}${scratchKb ? `, scratch redis-server ${fmtMB(scratchKb * 1024)}` : ''}; target redis-server ${fmtMB(targetKb * 1024)}`,
      commandCpu, targetCpu, otherCpu: Math.max(0, o.busy - commandCpu - targetCpu - o.bench), quiet: true, parts,
      checks: step.checks.map((x: any) => `${x.name} ${x.status} ${(x.durationMs / 1000).toFixed(2)} s`).join(', ') +
        (d.placed_by ? `; dump.rdb placed by ${d.placed_by}` : '') + (warnings.length ? `; warnings: ${warnings.join(' | ')}` : ''),
      // Keys written and the write phase: keys_restored/write_ms since live restores RESTORE cut payloads; keys_copied/copy_ms before (scratch server).
      ...(c === 'tykdr-live' ? { copied: d.keys_restored ?? d.keys_copied, copyMs: d.write_ms ?? d.copy_ms } : {}),
      ...(c === 'tykdr-live-repl' ? { copied: d.keys_restored, copyMs: d.replication_load_ms } : {}),
    };
  }

  // ------------------------------------------------------------------ report (stdout)
  const out: string[] = [];
  out.push('tykdr restore benchmark: Redis with Tyk-like apikey-* sessions');
  out.push(...machine);
  const argv = process.argv.slice(2).map((a) => (/^[\w,.=/-]+$/.test(a) ? a : `'${a}'`));
  out.push(`command: npx tsx bench/redis-restore.ts ${argv.join(' ')}`);
  out.push(`tykdr: ${describeCheckout(tykdrRoot)}`);
  out.push(
    `keys: ${fmtInt(N)} (Redis used_memory ${mem}); snapshot ${backup.id}: RDB ${fmtMB(rdbBytes)} MB, stored ${fmtMB(storedBytes)} MB ` +
      `(tykdr backup, zstd level ${level}${level === 3 ? ', tykdr\'s default' : ''}, one age recipient, local store)`,
  );
  out.push(`rounds: ${runs} undisturbed wanted, at most ${maxRuns}; quiet wait up to ${quietWait} s before each run` +
    (notQuiet > 0 ? `; ${notQuiet} run(s) started on a machine that did not get quiet` : ''));
  out.push('');
  out.push(`baseline:       age -d -i id OBJECT | zstd -d -q -o DIR/dump.rdb; redis-server --dir DIR --dbfilename dump.rdb; until INFO loading:0 (polled every 10 ms)`);
  if (targetDelay > 0) out.push(`targets a network away: tykdr reaches each through a proxy holding every chunk ${targetDelay} ms each way (--target-delay)`);
  out.push(`tykdr-rdb-file: node bin/run.js restore --plan redis --yes --json; restore.mode rdb-file into a running empty redis-server`);
  out.push(`                (stopCommand: ${stopCommand}; startCommand: redis-server ... --daemonize yes), checks: plan redis (ping, key counts, sample, ttl, replicas)`);
  out.push(`tykdr-rdb-min:  the same with a plan whose only check is redis-ping and restore.sample: 0 (the least verification tykdr allows)`);
  out.push(`tykdr-live:     node bin/run.js restore --plan redis --yes --json; restore.mode live into a running empty redis-server (SET for strings, RESTORE for the rest, batchSize 1000)`);
  out.push(`tykdr-live-repl: the same with restore.load replication: the target loads the staged RDB as a replica of tykdr, then REPLICAOF NO ONE`);
  out.push(`raw-pipe:       redis-cli --pipe < FILE into a running empty redis-server; FILE = the commands tykdr-live sends`);
  out.push(`                (SET key value PXAT ms for a string, RESTORE key ttl payload REPLACE ABSTTL for the rest), written from the source before the timed runs: Redis's own rate`);
  out.push('All: staging folder and data folders on the same disk; the object is read from a local store (page cache warm after the backup).');
  out.push('');

  const clean = (x: Row) => x.otherCpu <= DISTURBED_CPU_S;
  const baseOf = (x: Row) => rows.find((b) => b.run === x.run && b.contender === 'baseline')!;
  const header = ['run', 'contender', 'seconds', 'vs baseline', 'peak RSS MB', 'CPU s command', 'CPU s target', 'CPU s other', 'DBSIZE'];
  out.push('All runs (MB = 10^6 bytes; peak RSS: tykdr = its node process, baseline = age + zstd summed; CPU s command = user+sys');
  out.push('of the command and its reaped children (tykdr\'s scratch redis-server included); target = the redis-server restored into;');
  out.push(`other = the rest of the machine's busy CPU during the run: a row above ${DISTURBED_CPU_S} was disturbed):`);
  out.push(
    table(
      header,
      rows.map((x) => [
        String(x.run), x.contender, x.seconds.toFixed(2), `${(x.seconds / baseOf(x).seconds).toFixed(2)}x`, fmtMB(x.peakKb * 1024),
        x.commandCpu.toFixed(2), x.targetCpu.toFixed(2), x.otherCpu.toFixed(2), fmtInt(x.keys),
      ]),
    ),
  );
  out.push('');

  // Summary: medians over runs where both the contender and that run's baseline were undisturbed.
  const pairsOf = (c: Contender) => {
    const all = rows.filter((x) => x.contender === c).map((x) => [baseOf(x), x] as const);
    const ok = all.filter(([b, x]) => clean(b) && clean(x));
    return { used: ok.length > 0 ? ok : all, note: ok.length > 0 ? `${ok.length} of ${all.length}` : `0 of ${all.length} undisturbed: all used` };
  };
  out.push('Summary (medians over the runs whose baseline and tykdr rows were both undisturbed; ratio = median of per-run ratios):');
  const verdict = (ok: boolean, disturbed: boolean) => `${ok ? 'PASS' : 'MISS'}${disturbed ? ' (disturbed runs)' : ''}`;
  const sum: string[][] = [];
  const bUsed = pairsOf('baseline').used;
  sum.push(['baseline', pairsOf('baseline').note, median(bUsed.map(([b]) => b.seconds)).toFixed(2), '1.00x', '', '', '',
    `decompress ${median(bUsed.map(([b]) => b.parts.decompress!)).toFixed(2)} s + load ${median(bUsed.map(([b]) => b.parts.load!)).toFixed(2)} s`]);
  for (const c of ['tykdr-rdb-file', 'tykdr-rdb-min'] as const) {
    if (!contenders.includes(c)) continue;
    const p = pairsOf(c);
    const ratio = median(p.used.map(([b, x]) => x.seconds / b.seconds));
    const noChecks = median(p.used.map(([b, x]) => (x.seconds - x.parts.checks!) / b.seconds));
    // Also without the verification work the report places outside its checks: the read of the staged RDB for the
    // expected key counts (step before mode) and the scratch server loaded to draw the sample.
    const noVerify = median(p.used.map(([b, x]) => (x.seconds - x.parts.checks! - x.parts['step before mode']! - x.parts['  scratch for sample + swap']!) / b.seconds));
    const disturbed = p.note.startsWith('0 of');
    sum.push([
      c, p.note, median(p.used.map(([, x]) => x.seconds)).toFixed(2), `${ratio.toFixed(2)}x`, `${noChecks.toFixed(2)}x`, `${noVerify.toFixed(2)}x`,
      fmtMB(Math.max(...rows.filter((x) => x.contender === c).map((x) => x.peakKb * 1024))),
      `within ${TARGET_RATIO}x: ${verdict(ratio <= TARGET_RATIO, disturbed)}; w/o checks: ${verdict(noChecks <= TARGET_RATIO, disturbed)}; ` +
        `w/o any verification: ${verdict(noVerify <= TARGET_RATIO, disturbed)}`,
    ]);
  }
  const rate = (x: Row) => (x.copied! * 1000) / x.copyMs!;
  // tykdr-live's copy against redis-cli --pipe of the same commands in the same round (median of per-round ratios; an
  // undisturbed raw-pipe run only). redis-cli's rate is over its whole run (start-up and the final round trip
  // included), tykdr's over its copy phase: the share leans a little in tykdr's favour.
  const pipeOf = (x: Row) => rows.find((y) => y.run === x.run && y.contender === 'raw-pipe' && clean(y));
  const pipeShare = (used: (readonly [Row, Row])[]) => {
    const r = used.flatMap(([, x]) => (pipeOf(x) ? [rate(x) / rate(pipeOf(x)!)] : []));
    return r.length ? median(r) : undefined;
  };
  for (const c of ['tykdr-live', 'tykdr-live-repl'] as const) {
    if (!contenders.includes(c)) continue;
    const p = pairsOf(c);
    const kps = median(p.used.map(([, x]) => rate(x)));
    const whole = median(p.used.map(([, x]) => x.keys / x.seconds));
    const share = c === 'tykdr-live' ? pipeShare(p.used) : undefined;
    sum.push([
      c, p.note, median(p.used.map(([, x]) => x.seconds)).toFixed(2), `${median(p.used.map(([b, x]) => x.seconds / b.seconds)).toFixed(2)}x`, '', '',
      fmtMB(Math.max(...rows.filter((x) => x.contender === c).map((x) => x.peakKb * 1024))),
      `${c === 'tykdr-live' ? 'copy' : 'load'} phase ${fmtInt(kps)} keys/s (>= ${fmtInt(TARGET_KEYS_PER_S)}: ${verdict(kps >= TARGET_KEYS_PER_S, p.note.startsWith('0 of'))}); whole command ${fmtInt(whole)} keys/s` +
        (share !== undefined ? `; copy at ${(share * 100).toFixed(0)}% of redis-cli --pipe's rate` : ''),
    ]);
  }
  if (contenders.includes('raw-pipe')) {
    const p = pairsOf('raw-pipe');
    sum.push([
      'raw-pipe', p.note, median(p.used.map(([, x]) => x.seconds)).toFixed(2), `${median(p.used.map(([b, x]) => x.seconds / b.seconds)).toFixed(2)}x`, '', '', '',
      `redis-cli --pipe ${fmtInt(median(p.used.map(([, x]) => rate(x))))} keys/s: Redis's own rate for tykdr-live's commands`,
    ]);
  }
  if (values['summary-json']) {
    // For bench/issue-table.ts: medians over the runs used, CPU of the command plus the restored redis-server.
    const summary = contenders.filter((c) => c !== 'baseline').map((c) => {
      const p = pairsOf(c);
      const all = (x: Row) => x.commandCpu + x.targetCpu;
      return {
        contender: c, keys: N, runs: rows.filter((x) => x.contender === c).length, undisturbed: p.note.startsWith('0 of') ? 0 : p.used.length,
        baselineS: median(p.used.map(([b]) => b.seconds)), tykdrS: median(p.used.map(([, x]) => x.seconds)),
        ratio: median(p.used.map(([b, x]) => x.seconds / b.seconds)),
        baselineCpu: median(p.used.map(([b]) => all(b))), tykdrCpu: median(p.used.map(([, x]) => all(x))),
        cpuRatio: median(p.used.map(([b, x]) => all(x) / all(b))),
        tykdrPeakMB: Math.max(...rows.filter((x) => x.contender === c).map((x) => (x.peakKb * 1024) / 1e6)),
        baselinePeakMB: Math.max(...p.used.map(([b]) => (b.peakKb * 1024) / 1e6)),
        copyKeysPerS: isLive(c) || c === 'raw-pipe' ? median(p.used.map(([, x]) => rate(x))) : undefined,
        wholeKeysPerS: isLive(c) || c === 'raw-pipe' ? median(p.used.map(([, x]) => x.keys / x.seconds)) : undefined,
        pipeShare: c === 'tykdr-live' ? pipeShare(p.used) : undefined,
        otherCpu: Math.max(...p.used.flatMap(([b, x]) => [b.otherCpu, x.otherCpu])),
      };
    });
    await writeFile(values['summary-json'], JSON.stringify(summary, null, 1));
  }
  out.push(table(['contender', 'runs used', 'seconds', 'ratio', 'w/o checks', 'w/o any verification', 'node peak RSS MB', 'targets / notes'], sum));
  out.push('"w/o checks" subtracts the report\'s check durations (redis-key-counts, redis-sample, redis-ttl, ...) from tykdr\'s wall time;');
  out.push('"w/o any verification" also subtracts the verification work done outside the checks: the read of the staged RDB for');
  out.push('the expected key counts (step before mode) and the scratch redis-server loaded to draw the sample (scratch for sample + swap).');
  out.push('tykdr-rdb-min measures that without subtracting anything (plan with only redis-ping, restore.sample 0).');
  out.push('');

  out.push('Where tykdr\'s time goes (seconds, from the report\'s timestamps; start-up = spawn to report start: node, oclif, config;');
  out.push('before stage = snapshot lookup, target preflight; stage = read + SHA-256 + age + zstd into the staging folder;');
  out.push('step before mode = target checks and, with redis-key-counts, a read of the whole staged RDB for the expected counts;');
  out.push('mode = the restore itself (rdb-file: scratch server for the sample + stop + swap + start; live: scratch load + copy + sample);');
  out.push('after steps = report written to the store and folder, exit):');
  for (const x of rows) {
    const parts = Object.entries(x.parts)
      .map(([k, v], i, all) => (k.startsWith('  ') ? `${i > 0 && !all[i - 1]![0].startsWith('  ') ? '[' : ''}${k.trim()} ${v.toFixed(2)}${all[i + 1]?.[0].startsWith('  ') ? '' : ']'}` : `${k} ${v.toFixed(2)}`))
      .join(', ');
    out.push(`  run ${x.run}, ${x.contender} (${x.seconds.toFixed(2)} s): ${parts}${x.contender === 'baseline' ? '' : `; checks: ${x.checks}`}`);
    if (x.copied !== undefined) out.push(`    ${x.contender === 'tykdr-live-repl' ? 'loaded' : x.contender === 'raw-pipe' ? 'restored' : 'copied'} ${fmtInt(x.copied)} keys in ${(x.copyMs! / 1000).toFixed(2)} s = ${fmtInt(rate(x))} keys/s`);
  }
  out.push('');
  out.push('Peak RSS by process (MB; the target redis-server\'s is its VmHWM once loaded):');
  for (const x of rows) out.push(`  run ${x.run}, ${x.contender}: ${x.peakText}`);
  out.push('');
  out.push(`Verified: every run's target answered DBSIZE ${fmtInt(N)} (= the keys loaded into the source); every tykdr report said status succeeded.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * raw-pipe's input: every key of the Redis at `port` as tykdr-live sends it, `SET key value [PXAT ms]` for a string and
 * `RESTORE key ttl payload REPLACE ABSTTL` for the rest, encoded by the same CommandEncoder (src/backends/redis/protocol/resp-pipe.ts), from SCAN, DUMP and PEXPIRETIME (0 for
 * a key without a TTL). The keyspace does not change while it is read, so SCAN returns each key once; the caller
 * checks the count.
 */
async function writeRestoreCommands(port: number, file: string): Promise<{ keys: number; bytes: number }> {
  const r = new IORedis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  const out = createWriteStream(file);
  const enc = new CommandEncoder();
  let keys = 0;
  let bytes = 0;
  try {
    let cursor = '0';
    do {
      const [next, batch] = await r.scanBuffer(cursor, 'COUNT', 1000);
      cursor = next.toString();
      if (batch.length === 0) continue;
      const p = r.pipeline();
      for (const k of batch) {
        p.dumpBuffer(k);
        p.call('PEXPIRETIME', k);
      }
      const res = (await p.exec())!;
      batch.forEach((k, i) => {
        const [dumpErr, payload] = res[2 * i]!;
        const [ttlErr, at] = res[2 * i + 1]!;
        if (dumpErr || ttlErr || !Buffer.isBuffer(payload)) throw new Error(`raw-pipe: DUMP/PEXPIRETIME of a key failed: ${(dumpErr ?? ttlErr)?.message ?? 'no payload'}`);
        // As tykdr-live sends them: a string as SET key value [PXAT ms], every other type as RESTORE.
        const at0 = Math.max(0, Number(at));
        if (!enc.set(k, new PayloadString(payload), at0)) enc.restore(k, at0, payload, true);
      });
      const { data, count } = enc.take();
      keys += count;
      bytes += data.length;
      if (!out.write(data)) await once(out, 'drain');
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  out.end();
  await finished(out);
  return { keys, bytes };
}

async function waitUp(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await loadState(port)) !== 'up') {
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not come up`);
    await sleep(20);
  }
}

await runMain(main);
