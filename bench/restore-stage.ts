/**
 * A restore's stage alone: stageArtifact (read the stored object, SHA-256, age, zstd, write the plaintext into the
 * staging folder) in a fresh node per run, against the raw tools doing the same work, `age -d -i ID OBJECT | zstd
 * -d -q -o FILE`, in turns on the same object. Several checkouts side by side (--root, repeatable): the way to see
 * what a change to the stage pays. Prints wall and CPU seconds (all threads; for tykdr after its imports), their
 * medians and the median of the per-round ratios to the raw tools and to the first checkout. Asserts nothing, but
 * every run must stage the manifest's plaintext size, and the raw tools' file must have it too.
 *
 *   npx tsx bench/restore-stage.ts [--keys 1000000] [--runs 8] [--root DIR]... (default: this checkout)
 *       [--s3 MBPS [--download-concurrency 1,4]] [--gap S]
 *
 * The snapshot is a `tykdr backup` (the first root's CLI, its default zstd level) of N Tyk-like sessions to a local
 * folder. With --s3, to a local MinIO instead, which the stage reads through a proxy that serves each connection at
 * MBPS MB/s (bench/lib.ts rateProxy; 0: directly), as S3 serves each connection at a limited rate; each root is then
 * run with every `store.downloadConcurrency` of the list, and the raw tools read the object with curl (one
 * connection, `--aws-sigv4`) into `age -d | zstd -d`. Needs dist/ built in each root, redis-server, redis-cli, zstd,
 * age and age-keygen (bash scripts/tools.sh); with --s3, MinIO too.
 * --gap S waits S seconds before each run, after the run before freed its memory: on a VM whose balloon driver reports
 * free memory to the host (this project's machine), memory touched again after that faults on the host too, which is
 * when the stage's page faults (tykdr's, printed per round and as a median) cost the most.
 */
import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkoutsBench, installCleanup, log, MB, median, MINIO_KEY, MINIO_SECRET, must, rateProxy, runMain, startMinioServer, table } from './lib.js';

installCleanup();

const CHILD = `
import { readFileSync } from 'node:fs';
const [root, storeJson, snapshot, identity, dir] = process.argv.slice(2);
const cfg = JSON.parse(storeJson);
if (cfg.secretAccessKey) { const secret = cfg.secretAccessKey; cfg.secretAccessKey = { reveal: () => secret }; }
const { openStore } = await import(root + '/dist/backends/stores/registry.js');
const { readManifest } = await import(root + '/dist/core/catalog.js');
const { stageArtifact } = await import(root + '/dist/core/restore/staging.js');
const { parseIdentityFile } = await import(root + '/dist/core/age/index.js');
const store = openStore(cfg, {});
const manifest = await readManifest(store, snapshot);
const identities = parseIdentityFile(readFileSync(identity, 'utf8'), identity);
const f0 = process.resourceUsage().minorPageFault;
const c0 = process.cpuUsage();
const w0 = performance.now();
const s = await stageArtifact({ store, manifest, component: 'redis', dir, keys: { identities } });
const wall = (performance.now() - w0) / 1000;
const c = process.cpuUsage(c0);
const want = manifest.components.redis.artifact.plaintext_bytes;
if (s.plaintextBytes !== want) throw new Error('staged ' + s.plaintextBytes + ' bytes, the manifest says ' + want);
process.stdout.write(JSON.stringify({ wall, cpu: (c.user + c.system) / 1e6, faults: process.resourceUsage().minorPageFault - f0, bytes: s.plaintextBytes }));
`;

interface Row {
  wall: number;
  cpu: number;
  /** Minor page faults (tykdr's process, during the stage); not measured for the raw tools. */
  faults?: number;
}

/** The raw tools, timed by bash (`times`: the pipeline's CPU, children included); `object` a file, or a command that writes it. */
async function raw(object: { file: string } | { command: string }, identity: string, file: string): Promise<Row> {
  const read = 'file' in object ? `age -d -i '${identity}' '${object.file}'` : `${object.command} | age -d -i '${identity}'`;
  const script = `set -o pipefail; s=$(date +%s.%N); ${read} | zstd -d -q -f -o '${file}'; e=$(date +%s.%N); times; echo "$s $e"`;
  const lines = (await must('bash', ['-c', script])).split('\n');
  const [s, e] = lines.at(-1)!.split(' ').map(Number) as [number, number];
  // `times` prints the shell's own and its children's user/system times: "0m0.001s 0m0.002s" on two lines.
  const sec = (t: string) => t.split(/\s+/).reduce((a, x) => a + Number(/(\d+)m([\d.]+)s/.exec(x)![1]) * 60 + Number(/(\d+)m([\d.]+)s/.exec(x)![2]), 0);
  return { wall: e - s, cpu: sec(lines[0]!) + sec(lines[1]!) };
}

await runMain(async () => {
  const extra = { s3: { type: 'string' as const }, 'download-concurrency': { type: 'string' as const, default: '1,4' }, gap: { type: 'string' as const, default: '0' } };
  const { keys, runs, roots, work, script, identity, recipient: pub, redis, options } = await checkoutsBench('restore-stage', CHILD, { keys: 1_000_000, runs: 8 }, extra);
  const gapS = Number(options.gap);
  if (!Number.isFinite(gapS) || gapS < 0) throw new Error(`--gap ${options.gap}: seconds, >= 0`);
  const storeDir = path.join(work, 'store');
  const cfg = path.join(work, 'tykdr.yaml');
  const s3 = options.s3 === undefined ? undefined : { rate: Number(options.s3) * MB, minio: await startMinioServer(false) };
  let storeSection = `{ kind: local, path: ${storeDir} }`;
  if (s3) {
    const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
    const admin = new S3Client({ endpoint: s3.minio.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET } });
    await admin.send(new CreateBucketCommand({ Bucket: 'bench' }));
    admin.destroy();
    storeSection = `{ kind: s3, bucket: bench, endpoint: "${s3.minio.endpoint}", forcePathStyle: true, accessKeyId: ${MINIO_KEY}, secretAccessKey: ${MINIO_SECRET} }`;
  }
  await writeFile(cfg, `store: ${storeSection}\nencryption: { recipients: [${pub}] }\ncomponents:\n  redis: { kind: redis, port: ${redis.port} }\ntiers: { critical: { rto: 1h, rpo: 24h } }\n`);
  const backup = JSON.parse(await must(process.execPath, [path.join(roots[0]!, 'bin/run.js'), 'backup', '-c', cfg, '--json'], { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } })) as { id: string };
  await redis.stop();
  const snap = backup.id;
  // What the stage reads, and how the raw tools get the same bytes.
  let object: { file: string } | { command: string };
  const stores = new Map<string, object>(); // contender -> the store config its child opens
  let contenders: Array<[string, string]>; // [name, root]
  if (s3) {
    const u = new URL(s3.minio.endpoint);
    const proxy = s3.rate > 0 ? await rateProxy({ host: u.hostname, port: Number(u.port) }, s3.rate) : undefined;
    const endpoint = proxy ? `http://127.0.0.1:${proxy.port}` : s3.minio.endpoint;
    object = { command: `curl -sS --fail --aws-sigv4 'aws:amz:us-east-1:s3' --user '${MINIO_KEY}:${MINIO_SECRET}' '${endpoint}/bench/snapshots/${snap}/redis.rdb.zst.age'` };
    contenders = [];
    for (const root of roots) {
      for (const c of options['download-concurrency']!.split(',').map(Number)) {
        const name = `${root} (downloadConcurrency ${c})`;
        contenders.push([name, root]);
        stores.set(name, {
          kind: 's3', bucket: 'bench', prefix: '', region: 'us-east-1', endpoint, forcePathStyle: true, accessKeyId: MINIO_KEY, secretAccessKey: MINIO_SECRET,
          partSizeMiB: 8, uploadConcurrency: 2, downloadConcurrency: c, stallTimeout: '60s', connectTimeout: '10s', maxAttempts: 5,
        });
      }
    }
    log(`snapshot ${snap} in MinIO; ${proxy ? `each connection served at ${options.s3} MB/s (rate proxy)` : 'MinIO read directly'}`);
  } else {
    object = { file: path.join(storeDir, 'snapshots', snap, 'redis.rdb.zst.age') };
    contenders = roots.map((r) => [r, r]);
    for (const r of roots) stores.set(r, { kind: 'local', path: storeDir });
    log(`snapshot ${snap}: ${statSync(object.file).size.toLocaleString('en')} bytes stored`);
  }

  const names = ['raw tools', ...contenders.map(([n]) => n)];
  const rootOf = new Map(contenders);
  const rows = new Map<string, Row[]>(names.map((n) => [n, []]));
  let plainBytes = 0;
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const dir = path.join(work, 'staged');
      await rm(dir, { recursive: true, force: true });
      // What the run before wrote is flushed now, not written back during this run.
      await must('sync', []);
      // --gap: time for the memory the run before freed to be reported to the host (a VM with free page reporting).
      if (gapS > 0) await new Promise((r) => setTimeout(r, gapS * 1000));
      let row: Row;
      if (name === 'raw tools') {
        await must('mkdir', ['-p', dir]);
        const file = path.join(dir, 'dump.rdb');
        row = await raw(object, identity, file);
        const size = statSync(file).size;
        if (plainBytes && size !== plainBytes) throw new Error(`the raw tools wrote ${size} bytes, tykdr staged ${plainBytes}`);
      } else {
        const r = JSON.parse(
          await must(process.execPath, [script, rootOf.get(name)!, JSON.stringify(stores.get(name)), snap, identity, dir], { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } }),
        ) as Row & { bytes: number };
        plainBytes = r.bytes;
        row = r;
      }
      rows.get(name)!.push(row);
      log(`round ${i + 1}, ${name === 'raw tools' ? name : path.basename(name)}: ${row.wall.toFixed(3)} s, ${row.cpu.toFixed(2)} CPU-s${row.faults !== undefined ? `, ${row.faults} page faults` : ''}`);
    }
  }
  await rm(path.join(work, 'staged'), { recursive: true, force: true });
  const f = (xs: number[]) => median(xs).toFixed(3);
  const ratio = (a: string, b: string, k: 'wall' | 'cpu') => median(rows.get(a)!.map((x, i) => x[k] / rows.get(b)![i]![k])).toFixed(3);
  process.stdout.write(
    `Stage of a ${keys.toLocaleString('en')}-key snapshot (${plainBytes.toLocaleString('en')} plaintext bytes), ${runs} rounds, order reversed every other round; medians:\n` +
      table(
        ['contender', 'wall s', 'CPU s', 'wall / raw (per round)', 'CPU / raw', `wall / ${path.basename(contenders[0]![0])}`, 'page faults'],
        names.map((n) => [
          n, f(rows.get(n)!.map((x) => x.wall)), f(rows.get(n)!.map((x) => x.cpu)), ratio(n, 'raw tools', 'wall'), ratio(n, 'raw tools', 'cpu'),
          n === 'raw tools' ? '' : ratio(n, contenders[0]![0], 'wall'),
          n === 'raw tools' ? '' : String(median(rows.get(n)!.map((x) => x.faults ?? NaN))),
        ]),
      ) +
      `\n${gapS > 0 ? `Each run ${gapS} s after the run before had freed its memory (--gap). ` : ''}tykdr: stageArtifact after its imports (SHA-256 of the stored bytes, age, zstd on a worker thread, the write); raw tools: ${s3 ? 'curl | ' : ''}age -d | zstd -d -o, spawn to exit.` +
      (s3 ? ` Store: MinIO, ${s3.rate > 0 ? `each connection at ${options.s3} MB/s` : 'directly'}.\n` : '\n'),
  );
});
