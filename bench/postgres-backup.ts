/**
 * PostgreSQL benchmark: `tykdr backup` and `tykdr restore --plan database` of a pgbench database (scale 70, about
 * 1 GB) against the plain pipes `pg_dump -Fc | age -r KEY > file` and `age -d -i KEY file | pg_restore -d db`, in one
 * run on the same throwaway cluster. Prints figures; asserts nothing (exit 0 unless the benchmark could not run).
 *
 *   npx tsx bench/postgres-backup.ts [--scale 70] [--runs 1] [--jobs 1] [--quiet-wait 120]
 *
 * --jobs is tykdr's restore.jobs (pg_restore --jobs, default 1 as in tykdr: pg_restore then reads the archive through a
 * pipe as tykdr decompresses it, as the baseline does; more jobs read a staged plaintext file, without data offsets).
 * Every restore goes into a fresh database (tykdr creates its own; the baseline's is created untimed), which is
 * checked (pgbench_accounts rows) and dropped afterwards. Peak RSS is the VmHWM of each process of the command,
 * polled from /proc every 50 ms as bench/redis-backup.ts does; "tykdr peak RSS" is its node process.
 *
 * Everything (the cluster, temp folders) is started here and removed on exit, failure or Ctrl-C.
 * Needs: dist/ (npm run build), /usr/lib/postgresql/15/bin (initdb, pg_ctl, pgbench, pg_dump, pg_restore),
 * age, age-keygen. Run as root, the cluster runs as the `postgres` system user. bench/postgres-run.sh does all of that.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
// Only stateless helpers: this script keeps its own cleanup (the cluster must stop before its temp folder goes).
import { childPids, cpuSeconds as cpuOf, freePort, log, machineBusySeconds, MB, POLL_MS, repoRoot, runMain, sleep, version, vmHwmKb } from './lib.js';

const PG_BIN = process.env.TYKDR_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PASSWORD = 'bench-super-pw-0001';

// ---------------------------------------------------------------------------------------------------------
// Cleanup: children, temp folders and the cluster are removed on exit, failure and Ctrl-C.

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let clusterData: string | null = null;
const asPostgres = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];

function stopCluster(): void {
  if (!clusterData) return;
  try {
    execFileSync(...asPostgres(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', clusterData, '-m', 'immediate', '-s']), { stdio: 'ignore' });
  } catch {
    // already stopped
  }
  clusterData = null;
}

function cleanupSync(): void {
  for (const c of children) if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  stopCluster();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n[bench] ${sig}: stopping the cluster and removing temp folders\n`);
    cleanupSync();
    process.exit(130);
  });
}
process.on('exit', cleanupSync);

async function tempDir(tag: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `tykdr-bench-${tag}-`));
  tempDirs.add(d);
  return d;
}

/** Runs a command to completion; throws with its stderr on a non-zero exit. */
function must(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      children.delete(child);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().slice(-2000)}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// /proc readings (vmHwmKb, childPids, machineBusySeconds, cpuOf = cpuSeconds: bench/lib.ts)

function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of childPids(p)) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** CPU seconds the cluster has used so far: the postmaster, its live children, and the children it reaped. */
function serverCpu(postmaster: number): number {
  const pm = cpuOf(postmaster);
  return pm.self + pm.children + childPids(postmaster).reduce((a, pid) => a + cpuOf(pid).self, 0);
}

/**
 * A server process's role from its title ("postgres: autovacuum worker", "postgres: USER DB HOST(PORT) COPY"); null
 * while it has none (a backend just forked still shows the postmaster's command line; an exiting one shows nothing).
 */
function serverRole(pid: number): string | null {
  let title: string;
  try {
    title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return null;
  }
  const m = /^postgres: (.*)$/.exec(title);
  if (!m) return null;
  const t = m[1]!;
  for (const r of ['autovacuum worker', 'autovacuum launcher', 'checkpointer', 'background writer', 'walwriter', 'logical replication', 'parallel worker']) {
    if (t.startsWith(r)) return r;
  }
  return 'sessions';
}

/**
 * The cluster's CPU by process role (sessions, autovacuum, checkpointer, ...), sampled: each child's CPU when first
 * and last seen. A process that exits between two samples loses its last interval (the total, serverCpu, is exact).
 */
class ServerRoles {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, [string, number]>();
  constructor(private readonly postmaster: number) {
    for (const pid of childPids(postmaster)) this.first.set(pid, cpuOf(pid).self);
  }
  sample(): void {
    for (const pid of childPids(this.postmaster)) {
      const role = serverRole(pid) ?? this.last.get(pid)?.[0] ?? 'untitled';
      let cpu: number;
      try {
        cpu = cpuOf(pid, { strict: true }).self;
      } catch {
        continue; // gone since listed: keeps its last sample
      }
      if (!this.first.has(pid)) this.first.set(pid, 0);
      this.last.set(pid, [role, cpu]);
    }
  }
  byRole(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [pid, [role, cpu]] of this.last) out[role] = (out[role] ?? 0) + cpu - this.first.get(pid)!;
    return out;
  }
}

/** Waits (up to maxWaitS) until other processes used under 0.25 CPU-s per second for two seconds in a row. */
async function waitQuiet(maxWaitS: number): Promise<void> {
  const deadline = Date.now() + maxWaitS * 1000;
  let quiet = 0;
  while (quiet < 2) {
    const b0 = machineBusySeconds();
    const c0 = process.cpuUsage();
    await sleep(1000);
    const c = process.cpuUsage(c0);
    const busy = machineBusySeconds() - b0 - (c.user + c.system) / 1e6;
    quiet = busy < 0.25 ? quiet + 1 : 0;
    if (quiet === 0 && Date.now() > deadline) {
      log(`  the machine is still busy (${busy.toFixed(2)} CPU-s/s used by other processes); measuring anyway`);
      return;
    }
  }
}

interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** pid -> [comm, peak kB]: bash and every process below it. */
  peaks: Map<number, [string, number]>;
  /** CPU seconds of the command's own processes (bash `times`: its reaped children). */
  commandCpu: number;
  /** CPU seconds the PostgreSQL cluster used during the run. */
  serverCpu: number;
  /** Busy CPU seconds of everything else on the machine from spawn to 1.5 s after exit: other workloads. */
  otherCpu: number;
  /** serverCpu by process role, sampled (ServerRoles). */
  serverRoles: Record<string, number>;
}

/** Times `bash -c script` from spawn to exit, polling the VmHWM of every process below it. */
async function measured(script: string, env: NodeJS.ProcessEnv, postmaster: number, timesFile: string): Promise<Measured> {
  const peaks = new Map<number, [string, number]>();
  const busy0 = machineBusySeconds();
  const server0 = serverCpu(postmaster);
  const roles = new ServerRoles(postmaster);
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  const full = `set -o pipefail\n${script}\nrc=$?\ntimes > '${timesFile}'\nexit $rc`;
  const child = spawn('bash', ['-c', full], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: repoRoot, detached: true });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const poll = () => {
    roles.sample();
    // bash may exec its last command, so the root process itself is polled too (its comm tells which it is).
    for (const pid of [child.pid!, ...descendants(child.pid!)]) {
      const kb = vmHwmKb(pid);
      if (kb === null) continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      peaks.set(pid, [comm, Math.max(kb, peaks.get(pid)?.[1] ?? 0)]);
    }
  };
  const timer = setInterval(poll, POLL_MS);
  poll();
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  children.delete(child);
  for (let i = 0; i < 1500 / POLL_MS; i++) {
    roles.sample();
    await sleep(POLL_MS);
  } // let the server reap the command's backends before reading its counters
  const secs = (text: string | undefined) => {
    const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(text ?? '');
    return m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : 0;
  };
  const commandCpu = secs((await readFile(timesFile, 'utf8').catch(() => '')).trim().split('\n')[1]);
  const srv = serverCpu(postmaster) - server0;
  const bench = process.cpuUsage(bench0);
  const otherCpu = Math.max(0, machineBusySeconds() - busy0 - commandCpu - srv - (bench.user + bench.system) / 1e6);
  return { code, stdout, stderr, seconds, peaks, commandCpu, serverCpu: srv, otherCpu, serverRoles: roles.byRole() };
}

// ---------------------------------------------------------------------------------------------------------
// The cluster

interface Cluster {
  port: number;
  postmaster: number;
  env: NodeJS.ProcessEnv;
  sql(db: string, query: string): Promise<string>;
}

async function startCluster(): Promise<Cluster> {
  for (const tool of ['initdb', 'pg_ctl', 'pgbench', 'pg_dump', 'pg_restore', 'psql']) {
    try {
      statSync(path.join(PG_BIN, tool));
    } catch {
      throw new Error(`${path.join(PG_BIN, tool)} is missing: apt-get install postgresql-15 (or set TYKDR_PG_BIN)`);
    }
  }
  const dir = await tempDir('pg');
  const pwfile = path.join(dir, 'pwfile');
  await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    await chown(dir, uid, gid);
    await chown(pwfile, uid, gid);
  }
  const data = path.join(dir, 'data');
  await must(...asPostgres(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8']));
  const port = await freePort();
  // Default durability (fsync on); room for a 1 GB load without a checkpoint storm.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB -c maintenance_work_mem=256MB`;
  await must(...asPostgres(path.join(PG_BIN, 'pg_ctl'), ['start', '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-s', '-o', opts]));
  clusterData = data;
  const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' };
  return { port, postmaster, env, sql: (db, query) => must(path.join(PG_BIN, 'psql'), ['-X', '-q', '-A', '-t', '-d', db, '-c', query], env) };
}

// ---------------------------------------------------------------------------------------------------------
// The benchmark

interface Row {
  op: 'backup' | 'restore';
  run: number;
  /** compare: another checkout's tykdr (--compare ROOT) restoring the same snapshot. */
  contender: 'baseline' | 'tykdr' | 'compare';
  seconds: number;
  /** tykdr: its node process; baseline: all of its processes summed. */
  peakKb: number;
  peakDetail: string;
  commandCpu: number;
  serverCpu: number;
  otherCpu: number;
  serverRoles: Record<string, number>;
  note: string;
}

const fmtMB = (bytes: number) => (bytes / MB).toFixed(1);

function peakOf(m: Measured, contender: Row['contender']): { peakKb: number; peakDetail: string } {
  const list = [...m.peaks.values()];
  const node = list.filter(([comm]) => comm === 'node').reduce((a, [, kb]) => Math.max(a, kb), 0);
  return {
    peakKb: contender !== 'baseline' ? node : list.filter(([comm]) => comm !== 'bash').reduce((a, [, kb]) => a + kb, 0),
    peakDetail: list.filter(([comm]) => comm !== 'bash').map(([comm, kb]) => `${comm} ${fmtMB(kb * 1024)}`).join(', '),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 || i === r.length - 1 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '70' },
      runs: { type: 'string', default: '1' },
      jobs: { type: 'string', default: '1' },
      'quiet-wait': { type: 'string', default: '120' },
      'summary-json': { type: 'string' },
      compare: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx bench/postgres-backup.ts [--scale 70] [--runs 1] [--jobs 1] [--quiet-wait 120] [--summary-json FILE] [--compare ROOT]\n');
    return;
  }
  const scale = Number(values.scale);
  const runs = Number(values.runs);
  const jobs = Number(values.jobs);
  const quietWait = Number(values['quiet-wait']);
  if (![scale, runs, jobs].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('bad --scale/--runs/--jobs');
  const compareRoot = values.compare ? path.resolve(values.compare) : null;
  if (compareRoot) statSync(path.join(compareRoot, 'dist/commands/restore.js'));
  try {
    statSync(path.join(repoRoot, 'dist/commands/backup.js'));
  } catch {
    throw new Error('dist/ is missing: run npm run build');
  }

  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const machine = [
    `machine: ${os.availableParallelism()} CPUs, ${cpuModel}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`,
    `node ${process.version}; ${version(path.join(PG_BIN, 'pg_dump'), ['--version'])}; age ${version('age', ['--version'])}; ` +
      `tykdr ${JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version}`,
  ];
  for (const l of machine) log(l);

  const work = await tempDir('work');
  const pg = await startCluster();
  log(`cluster on 127.0.0.1:${pg.port}; pgbench -i -s ${scale} (server-side generation)`);
  await pg.sql('postgres', 'CREATE DATABASE bench');
  let t = performance.now();
  await must(path.join(PG_BIN, 'pgbench'), ['-i', '-s', String(scale), '-I', 'dtGvp', '-q', 'bench'], pg.env);
  await pg.sql('bench', 'CHECKPOINT');
  const dbBytes = Number(await pg.sql('bench', 'SELECT pg_database_size(current_database())'));
  const accounts = scale * 100_000;
  log(`loaded in ${((performance.now() - t) / 1000).toFixed(1)} s: database ${fmtMB(dbBytes)} MB, ${accounts.toLocaleString('en')} pgbench_accounts rows`);

  const identity = path.join(work, 'identity.txt');
  await must('age-keygen', ['-o', identity]);
  const recipient = await must('age-keygen', ['-y', identity]);
  const store = path.join(work, 'store');
  const stagingDir = path.join(work, 'staging');
  await mkdir(stagingDir);
  const tykdrConfig = (targetDb: string) => `store: { kind: local, path: ${store} }
encryption: { recipients: [${recipient}], identityFile: ${identity} }
components:
  db:
    kind: postgres
    host: 127.0.0.1
    port: ${pg.port}
    database: bench
    username: postgres
    password: \${BENCH_PG_PASSWORD}
    binDir: ${PG_BIN}
    restore: { jobs: ${jobs}, target: { database: ${targetDb} } }
restore: { stagingDir: ${stagingDir}, reportDir: ${path.join(work, 'reports')} }
`;
  const env: NodeJS.ProcessEnv = { ...pg.env, BENCH_PG_PASSWORD: PASSWORD };
  const baseFile = path.join(work, 'baseline.dump.age');
  // With --compare, each checkout keeps its V8 code cache in a fresh folder of its own (see the compare contender below),
  // so that both start their first restore without one.
  const node = `${compareRoot ? `TYKDR_CACHE_DIR='${path.join(work, 'v8-cache-this')}' ` : ''}'${process.execPath}' '${repoRoot}/bin/run.js'`;
  const rows: Row[] = [];
  const facts: string[] = [];

  for (let run = 1; run <= runs; run++) {
    // ---------------------------------------------------------------- backup
    const order: Row['contender'][] = run % 2 === 1 ? ['baseline', 'tykdr'] : ['tykdr', 'baseline'];
    let snapshotId = '';
    for (const contender of order) {
      if (quietWait > 0) await waitQuiet(quietWait);
      log(`run ${run}: backup, ${contender}`);
      const cfg = path.join(work, `backup-${run}.yaml`);
      await writeFile(cfg, tykdrConfig('unused'));
      const script =
        contender === 'baseline'
          ? `'${PG_BIN}/pg_dump' -Fc -d bench | age -r '${recipient}' > '${baseFile}'`
          : `${node} backup -c '${cfg}' --json`;
      const m = await measured(script, env, pg.postmaster, path.join(work, 'times.txt'));
      if (m.code !== 0) throw new Error(`backup ${contender} exited ${m.code}: ${m.stderr.slice(-3000)}`);
      let note: string;
      if (contender === 'baseline') {
        note = `file ${fmtMB(statSync(baseFile).size)} MB (pg_dump's own gzip, default level)`;
      } else {
        const out = JSON.parse(m.stdout) as { id: string; manifest: any };
        snapshotId = out.id;
        const e = out.manifest.components.db;
        const stored = statSync(path.join(store, 'snapshots', out.id, e.artifact.name)).size;
        if (stored !== e.artifact.stored_bytes) throw new Error(`stored object is ${stored} bytes, manifest says ${e.artifact.stored_bytes}`);
        if (e.source.tables['public.pgbench_accounts'] !== accounts) throw new Error(`manifest counts ${e.source.tables['public.pgbench_accounts']} accounts, expected ${accounts}`);
        note = `dump ${fmtMB(e.artifact.plaintext_bytes)} MB (pg_dump -Z0) -> ${fmtMB(e.artifact.stored_bytes)} MB stored (zstd 3 + age)`;
        facts.push(`run ${run}: snapshot ${out.id}: ${e.source.total_rows.toLocaleString('en')} rows counted in the dump's snapshot ` +
          `(pgbench_accounts ${e.source.tables['public.pgbench_accounts'].toLocaleString('en')}), consistent_at ${e.consistent_at}, server ${e.source.server_version}`);
      }
      rows.push({ op: 'backup', run, contender, seconds: m.seconds, ...peakOf(m, contender), commandCpu: m.commandCpu, serverCpu: m.serverCpu, otherCpu: m.otherCpu, serverRoles: m.serverRoles, note });
      log(`  ${m.seconds.toFixed(2)} s; ${note}`);
    }

    // ---------------------------------------------------------------- restore (fresh database each time)
    // With --compare, another checkout restores the same snapshot too (first or last in turn), for a before/after.
    const restoreOrder: Row['contender'][] = compareRoot ? (run % 2 === 1 ? [...order, 'compare'] : ['compare', ...order]) : order;
    for (const contender of restoreOrder) {
      const db = `restored_${contender}_${run}`;
      if (quietWait > 0) await waitQuiet(quietWait);
      log(`run ${run}: restore into a fresh database, ${contender}`);
      let script: string;
      const cfg = path.join(work, `restore-${run}.yaml`);
      if (contender === 'baseline') {
        await pg.sql('postgres', `CREATE DATABASE ${db}`);
        script = `age -d -i '${identity}' '${baseFile}' | '${PG_BIN}/pg_restore' -d ${db}`;
      } else {
        await writeFile(cfg, tykdrConfig(db));
        // The other checkout keeps its V8 code cache in a folder of its own: sharing one, each checkout's run would delete
        // the other's cache (a command keeps one bundle's), and every run of both would start without one.
        const cli = contender === 'compare' ? `TYKDR_CACHE_DIR='${path.join(work, 'v8-cache-compare')}' '${process.execPath}' '${compareRoot}/bin/run.js'` : node;
        script = `${cli} restore --plan database --yes --json --snapshot ${snapshotId} -c '${cfg}'`;
      }
      const m = await measured(script, env, pg.postmaster, path.join(work, 'times.txt'));
      if (m.code !== 0) throw new Error(`restore ${contender} exited ${m.code}: ${(m.stdout + m.stderr).slice(-3000)}`);
      const got = Number(await pg.sql(db, 'SELECT count(*) FROM pgbench_accounts'));
      if (got !== accounts) throw new Error(`${contender} restored ${got} pgbench_accounts rows, expected ${accounts}`);
      let note = `pgbench_accounts ${got.toLocaleString('en')} rows`;
      if (contender !== 'baseline') {
        const report = JSON.parse(m.stdout).report;
        const stage = report.steps.find((s: any) => s.id === 'stage');
        const step = report.steps.find((s: any) => s.component === 'database');
        const checks = step.checks.map((c: any) => `${c.name} ${c.status} ${(c.durationMs / 1000).toFixed(1)} s`).join(', ');
        const chunks = step.details.db.copy_chunks;
        note += `; stage ${(stage.durationMs / 1000).toFixed(1)} s, pg_restore --jobs ${jobs} ${(step.details.db.restore_ms / 1000).toFixed(1)} s, ${checks}` +
          (chunks?.sent ? `; ${chunks.in_archive.toLocaleString('en')} data chunks sent as ${chunks.sent.toLocaleString('en')}` : '');
      }
      rows.push({ op: 'restore', run, contender, seconds: m.seconds, ...peakOf(m, contender), commandCpu: m.commandCpu, serverCpu: m.serverCpu, otherCpu: m.otherCpu, serverRoles: m.serverRoles, note });
      log(`  ${m.seconds.toFixed(2)} s; ${note}`);
      await pg.sql('postgres', `DROP DATABASE ${db}`);
    }
    await rm(path.join(store, 'snapshots', snapshotId), { recursive: true, force: true });
  }

  // ------------------------------------------------------------------ report (stdout)
  const out: string[] = [];
  out.push('tykdr PostgreSQL benchmark: pgbench database, backup and restore against the plain pipes');
  out.push(...machine);
  out.push(`command: npx tsx bench/postgres-backup.ts --scale ${scale} --runs ${runs} --jobs ${jobs}`);
  out.push(`database: pgbench scale ${scale}, ${fmtMB(dbBytes)} MB on disk (pg_database_size), ${accounts.toLocaleString('en')} pgbench_accounts rows`);
  out.push('');
  out.push(`backup baseline:  pg_dump -Fc -d bench | age -r KEY > file`);
  out.push(`backup tykdr:     node bin/run.js backup (store kind local on the same disk; pg_dump -Fc -Z0 | rows counted from the stream | zstd 3 | age | SHA-256)`);
  out.push(`restore baseline: age -d -i KEY file | pg_restore -d fresh_db   (database created untimed; a pipe allows no --jobs)`);
  out.push(
    jobs === 1
      ? `restore tykdr:    node bin/run.js restore --plan database (stage: SHA-256 + decrypt (age MAC) to a still compressed file; create the database;`
      : `restore tykdr:    node bin/run.js restore --plan database (stage: SHA-256 + decrypt (age MAC) + decompress to a file; create the database;`,
  );
  out.push(
    jobs === 1
      ? `                  zstd -d of it | pg_restore --clean --if-exists --jobs 1; checks database-counts and database-indexes)`
      : `                  pg_restore --clean --if-exists --jobs ${jobs} of the file; checks database-counts and database-indexes)`,
  );
  out.push('');
  const header = ['op', 'run', 'contender', 'seconds', 'vs baseline', 'peak RSS MB', 'CPU-s command', 'CPU-s server', 'CPU-s other', 'detail'];
  const body = rows.map((r) => {
    const base = rows.find((b) => b.op === r.op && b.run === r.run && b.contender === 'baseline')!;
    return [r.op, String(r.run), r.contender, r.seconds.toFixed(2), r.contender === 'baseline' ? '1.00x' : `${(r.seconds / base.seconds).toFixed(2)}x`,
      fmtMB(r.peakKb * 1024), r.commandCpu.toFixed(2), r.serverCpu.toFixed(2), r.otherCpu.toFixed(2), r.note];
  });
  out.push('All runs (MB = 10^6 bytes; peak RSS: tykdr = its node process, baseline = its processes summed; CPU-s command = user+sys');
  out.push('of the command\'s processes, server = the PostgreSQL cluster, other = the rest of the machine from spawn to 1.5 s after');
  out.push(`exit: on this ${os.availableParallelism()}-CPU machine, a row with more than about 0.5 there was disturbed by other work):`);
  out.push(table(header, body));
  out.push('');
  const sumHeader = ['op', 'runs', 'baseline s', 'tykdr s', 'ratio', 'tykdr peak RSS MB', 'other CPU-s (max)'];
  const sumBody = (['backup', 'restore'] as const).map((op) => {
    const mine = rows.filter((r) => r.op === op && r.contender === 'tykdr');
    const base = rows.filter((r) => r.op === op && r.contender === 'baseline');
    const ratio = median(mine.map((r) => r.seconds / base.find((b) => b.run === r.run)!.seconds));
    return [op, String(mine.length), median(base.map((r) => r.seconds)).toFixed(2), median(mine.map((r) => r.seconds)).toFixed(2), `${ratio.toFixed(2)}x`,
      fmtMB(Math.max(...mine.map((r) => r.peakKb)) * 1024), Math.max(...rows.filter((r) => r.op === op).map((r) => r.otherCpu)).toFixed(2)];
  });
  if (values['summary-json']) {
    // For bench/issue-table.ts: CPU = the command's processes plus the cluster's (pg_dump/pg_restore's server side).
    const all = (r: Row) => r.commandCpu + r.serverCpu;
    const summary = (['backup', 'restore'] as const).map((op) => {
      const mine = rows.filter((r) => r.op === op && r.contender === 'tykdr');
      const base = rows.filter((r) => r.op === op && r.contender === 'baseline');
      const pair = (r: Row) => base.find((b) => b.run === r.run)!;
      return {
        op, scale, runs: mine.length, baselineS: median(base.map((r) => r.seconds)), tykdrS: median(mine.map((r) => r.seconds)),
        ratio: median(mine.map((r) => r.seconds / pair(r).seconds)), baselineCpu: median(base.map(all)), tykdrCpu: median(mine.map(all)),
        cpuRatio: median(mine.map((r) => all(r) / all(pair(r)))), tykdrPeakMB: (Math.max(...mine.map((r) => r.peakKb)) * 1024) / MB,
        otherCpu: Math.max(...rows.filter((r) => r.op === op).map((r) => r.otherCpu)),
      };
    });
    await writeFile(values['summary-json'], JSON.stringify(summary, null, 1));
  }
  out.push(`Summary${runs > 1 ? ` (medians of ${runs} runs; ratio = median of per-run ratios; RSS = highest run)` : ''}:`);
  out.push(table(sumHeader, sumBody));
  if (compareRoot) {
    const pairs = rows.filter((r) => r.op === 'restore' && r.contender === 'compare').map((c) => ({ c, t: rows.find((r) => r.op === 'restore' && r.run === c.run && r.contender === 'tykdr')! }));
    const cpu = (r: Row) => r.commandCpu + r.serverCpu;
    out.push(
      `restore, this checkout against --compare ${compareRoot} (same snapshot, same runs): wall ${median(pairs.map((x) => x.t.seconds / x.c.seconds)).toFixed(3)}x, ` +
        `CPU (tykdr + server) ${median(pairs.map((x) => cpu(x.t) / cpu(x.c))).toFixed(3)}x; compare ${median(pairs.map((x) => x.c.seconds)).toFixed(2)} s, ` +
        `${median(pairs.map((x) => cpu(x.c))).toFixed(2)} CPU-s; this ${median(pairs.map((x) => x.t.seconds)).toFixed(2)} s, ${median(pairs.map((x) => cpu(x.t))).toFixed(2)} CPU-s`,
    );
  }
  out.push('');
  out.push('Peak RSS by process (MB):');
  for (const r of rows) out.push(`  ${r.op} run ${r.run} ${r.contender}: ${r.peakDetail}`);
  out.push('');
  out.push('Server CPU-s by process role (sampled every 50 ms from spawn to 1.5 s after exit; sessions = the client backends,');
  out.push('pg_restore\'s and tykdr\'s checks; a process ending between samples loses its last 50 ms):');
  for (const r of rows) {
    const parts = Object.entries(r.serverRoles).filter(([, v]) => v >= 0.005).sort((a, b) => b[1] - a[1]);
    out.push(`  ${r.op} run ${r.run} ${r.contender}: ${parts.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') || 'none'} (total ${r.serverCpu.toFixed(2)})`);
  }
  out.push('');
  out.push('Backups verified from the manifest:');
  for (const f of facts) out.push(`  ${f}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await runMain(main, cleanupSync);
