/**
 * Point-in-time capture throughput (issue 13): does `tykdr stream` keep up with a master taking writes as
 * fast as this machine can make them? A redis-server (no persistence), `tykdr stream --segment 5s` attached to
 * it, then `redis-benchmark -t set` (pipelined, random keys) as the write load. Printed: the write rate the
 * benchmark achieved, how far tykdr's acknowledged replication offset fell behind the master's (bytes, at the
 * worst sampled moment), how long it took to catch up after the load stopped (the captured rate counts that
 * time: writes over load plus catch-up), tykdr's CPU seconds against
 * redis-server's in the same run, and tykdr's peak RSS. Afterwards a restore to the end is checked key for key.
 *
 *   npx tsx bench/pitr-throughput.ts [--writes 1000000] [--pipeline 16]
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cpuSeconds, fmtInt, log, machineLines, must, parseInfo, redisCall, repoRoot, runMain, sleep, startRedis, table, tempDir, track, vmHwmKb } from './lib.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

async function replicaLag(port: number): Promise<{ master: number; acked: number | null }> {
  const info = parseInfo((await redisCall(port, ['INFO', 'replication'])).value);
  const slave = Object.entries(info).find(([k]) => /^slave\d+$/.test(k))?.[1];
  const acked = slave ? Number(/offset=(\d+)/.exec(slave)?.[1]) : null;
  return { master: Number(info.master_repl_offset), acked };
}

runMain(async () => {
  const writes = arg('writes', 1_000_000);
  const pipelineDepth = arg('pipeline', 16);
  const work = await tempDir('pitr');
  const source = await startRedis({ extra: ['--repl-diskless-sync-delay', '0'] });
  const target = await startRedis();
  await must('node', [path.join(repoRoot, 'bin/run.js'), 'key', 'generate', '--output', path.join(work, 'id.txt'), '--json']).then(async (out) => {
    const recipient = (JSON.parse(out) as { recipient: string }).recipient;
    await writeFile(
      path.join(work, 'tykdr.yaml'),
      `store: { kind: local, path: ./store }\nencryption: { recipients: [${recipient}], identityFile: ./id.txt }\ncomponents:\n  redis: { kind: redis, port: ${source.port}, restore: { target: { port: ${target.port} } } }\n`,
    );
  });
  const stream = track(spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'stream', '--config', path.join(work, 'tykdr.yaml'), '--segment', '5s'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  stream.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  while (!/chain \S+ started/.test(err)) {
    if (stream.exitCode !== null) throw new Error(`tykdr stream exited: ${err}`);
    await sleep(100);
  }
  log(`capturing; writing ${fmtInt(writes)} keys with redis-benchmark -P ${pipelineDepth}`);
  const cpu0 = { tykdr: cpuSeconds(stream.pid!).self, redis: cpuSeconds(source.pid).self };
  let maxLagBytes = 0;
  let peakKb = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const l = await replicaLag(source.port).catch(() => null);
      if (l?.acked != null) maxLagBytes = Math.max(maxLagBytes, l.master - l.acked);
      peakKb = Math.max(peakKb, vmHwmKb(stream.pid!) ?? 0);
      await sleep(100);
    }
  })();
  const t0 = Date.now();
  const bench = await must('redis-benchmark', ['-p', String(source.port), '-t', 'set', '-n', String(writes), '-r', '1000000', '-d', '100', '-P', String(pipelineDepth), '-q']);
  const loadMs = Date.now() - t0;
  const t1 = Date.now();
  for (;;) {
    const l = await replicaLag(source.port);
    if (l.acked !== null && l.acked >= l.master) break;
    if (Date.now() - t1 > 300_000) throw new Error('tykdr did not catch up within 300 s');
    await sleep(50);
  }
  const catchUpMs = Date.now() - t1;
  done = true;
  await sampler;
  const cpu = { tykdr: cpuSeconds(stream.pid!).self - cpu0.tykdr, redis: cpuSeconds(source.pid).self - cpu0.redis };
  await sleep(6000); // the open segment closes
  stream.kill('SIGTERM');
  await new Promise((r) => stream.once('exit', r));
  const rate = writes / (loadMs / 1000);
  log(`restoring to the end and comparing`);
  const restore = await must('node', [path.join(repoRoot, 'bin/run.js'), 'restore', '--config', path.join(work, 'tykdr.yaml'), '--plan', 'redis', '--to-time', new Date().toISOString(), '--yes', '--json'], { cwd: work });
  const report = (JSON.parse(restore) as { report: { status: string; steps: Array<{ id: string; details: { commands?: number } }> } }).report;
  const [a, b] = await Promise.all([source.cli('DBSIZE'), target.cli('DBSIZE')]);
  process.stdout.write(
    [
      ...machineLines(),
      `redis-benchmark: ${bench.trim().split('\n').pop()}`,
      table(
        ['writes', 'write rate', 'captured rate', 'max lag', 'catch-up after load', 'tykdr CPU s', 'redis-server CPU s', 'tykdr peak RSS', 'restore to end'],
        [[fmtInt(writes), `${fmtInt(rate)}/s`, `${fmtInt(writes / ((loadMs + catchUpMs) / 1000))}/s`, `${fmtInt(maxLagBytes)} B`, `${catchUpMs} ms`, cpu.tykdr.toFixed(2), cpu.redis.toFixed(2), `${(peakKb / 1024).toFixed(0)} MiB`, `${report.status}, ${fmtInt(report.steps.find((s) => s.id === 'redis-replay')?.details.commands ?? 0)} commands, DBSIZE ${a.trim()} = ${b.trim()}`]],
      ),
      '',
    ].join('\n'),
  );
  if (report.status !== 'succeeded' || a.trim() !== b.trim()) throw new Error('the restore to the end does not match the source');
});
