import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Gateway } from '../config/load.js';
import { badInput, TykdrError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import { freePort } from '../net.js';
import { destinationOf } from '../restore/destination.js';
import type { DrillGatewayStarter } from '../restore/types.js';
import { Secret } from '../secret.js';
import { countsAsApi, drillApiDefinition, drillTykConf } from '../tyk/drill-conf.js';
import { sleep } from '../util/abort.js';
import { formatMs, scrub } from '../util/text.js';
import { watchChild, type Watchdog } from '../util/watchdog.js';
import { startScratchUpstream, type ScratchUpstream } from './scratch-upstream.js';

export interface ScratchGatewayOptions {
  /** drill.gateway */
  binary: string;
  templates?: string;
  startTimeoutMs: number;
  /** The drill's work folder: the gateway gets dir/gateway (conf, rewritten apps, log). */
  dir: string;
  manifest: Manifest;
  /** Where the drill's files target extracted the snapshot's config files. */
  filesTo: string | undefined;
  /** The drill's scratch Redis. */
  redis: { host: string; port: number; password?: Secret } | undefined;
  /** tykdr.yaml's gateway section: its keyProbe (the canary), paths and timeout are used against the drill gateway. */
  configured?: Gateway;
}

/** Longest line kept whole in the log before it is cut (bounded memory). */
const MAX_LINE = 64 * 1024;
const STOP_GRACE_MS = 5000;

/**
 * The operator's Tyk Gateway binary, run by a drill against its scratch targets: `BINARY --conf FILE` with
 * the snapshot's tyk.conf rewritten by drillTykConf (src/core/tyk/drill-conf.ts), the restored API
 * definitions pointed at a scratch upstream, in its own process group under the watchdog (a kill -9 of
 * tykdr stops it), cwd and log in the drill's work folder. Its stdout and stderr go to gateway.log with
 * every secret tykdr knows (gateway secret, Redis password, canary key) replaced. stop() ends it whatever
 * happened; start() runs at most once.
 */
export class ScratchGateway implements DrillGatewayStarter {
  readonly home: string;
  readonly logFile: string;
  /** Set once the binary was spawned. */
  spawned = false;
  private child?: ChildProcess;
  private dog?: Watchdog;
  private log?: WriteStream;
  private upstream?: ScratchUpstream;
  private secrets: string[] = [];

  constructor(private readonly o: ScratchGatewayOptions) {
    this.home = path.join(o.dir, 'gateway');
    this.logFile = path.join(this.home, 'gateway.log');
  }

  async start(signal: AbortSignal, note: (line: string) => void): Promise<{ gateway: Gateway; details: Record<string, unknown> }> {
    const { o } = this;
    const tykFile = typeof o.manifest.tyk?.file === 'string' ? o.manifest.tyk.file : undefined;
    if (tykFile === undefined) {
      throw new TykdrError('verifyFailed', `snapshot ${o.manifest.id} has no gateway tyk.conf (no files component recorded one), so the drill gateway cannot start: gateway not proven`, {
        fix: 'back up the gateway folder with a files component (tykConf names its tyk.conf), or unset drill.gateway',
      });
    }
    if (o.redis === undefined) throw new TykdrError('verifyFailed', 'this drill restores no Redis, so the drill gateway has no keys to serve: gateway not proven', { fix: 'drill a plan with a redis step (full)' });
    const confPath = destinationOf(tykFile, o.filesTo);
    let original: Record<string, unknown>;
    try {
      original = JSON.parse(await readFile(confPath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new TykdrError('verifyFailed', `the restored ${tykFile} could not be read as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the drill gateway cannot start`);
    }
    await mkdir(path.join(this.home, 'apps'), { recursive: true, mode: 0o700 });
    const port = await freePort();
    const confDir = path.dirname(confPath);
    const templatePath = o.templates ?? (await firstDir([path.join(confDir, 'templates'), path.join(path.dirname(o.binary), 'templates')])) ?? path.join(confDir, 'templates');
    const redisPassword = o.redis.password?.reveal();
    const drilled = drillTykConf({
      conf: original,
      confDir,
      port,
      redis: { host: o.redis.host, port: o.redis.port, password: redisPassword },
      appPath: path.join(this.home, 'apps'),
      templatePath,
      pidFile: path.join(this.home, 'tyk.pid'),
    });
    const secret = typeof original.secret === 'string' ? original.secret : '';
    const security = (original.security ?? {}) as Record<string, unknown>;
    this.secrets = [secret, redisPassword ?? '', String(security.private_certificate_encoding_secret ?? ''), String(original.node_secret ?? ''), o.configured?.keyProbe?.key.reveal() ?? ''].filter((s) => s.length >= 4);

    this.upstream = await startScratchUpstream();
    const apis = await this.copyApis(drilled.sourceAppPath, this.upstream.url);
    const policies = await countPolicies(drilled.policies);
    const confFile = path.join(this.home, 'tyk.conf');
    await writeFile(confFile, JSON.stringify(drilled.conf, null, 2), { mode: 0o600 });

    note(`  starting the drill gateway: ${o.binary} --conf ${confFile} (port ${port}, ${apis} API(s), ${policies} polic(ies))`);
    this.log = createWriteStream(this.logFile, { mode: 0o600 });
    this.log.on('error', () => undefined);
    // TYK_GW_* variables would override the rewritten file (and could point at production): not passed on.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TYK_')));
    const child = spawn(o.binary, ['--conf', confFile], { cwd: this.home, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.dog = watchChild(child, { group: true });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const exited = new Promise<string>((resolve) => child.once('exit', (code, sig) => resolve(sig ? `was killed by ${sig}` : `exited with code ${code}`)));
    this.spawned = true;
    this.pipeLog(child.stdout!);
    this.pipeLog(child.stderr!);

    const endWait = new AbortController();
    const waited = await Promise.race([
      spawnError.then((e) => ({ error: e })),
      exited.then((how) => ({ exited: how })),
      waitForPort(port, o.startTimeoutMs, AbortSignal.any([signal, endWait.signal])).then((ok) => ({ listening: ok })),
    ]).finally(() => endWait.abort());
    if ('error' in waited) {
      const code = (waited.error as NodeJS.ErrnoException).code ?? waited.error.message;
      throw badInput(`cannot start the drill gateway "${o.binary}" (${code})`, 'set drill.gateway.binary to the Tyk Gateway executable (e.g. /opt/tyk-gateway/tyk)');
    }
    if ('exited' in waited || !waited.listening) {
      const how = 'exited' in waited ? waited.exited : `did not listen on port ${port} within ${formatMs(o.startTimeoutMs)}`;
      throw new TykdrError('verifyFailed', `the drill gateway ${how} with the snapshot's tyk.conf: ${await this.tail()} (log: ${this.logFile})`, {
        fix: 'read the gateway log; raise drill.gateway.startTimeout if it is only slow',
      });
    }
    const helloName = typeof original.health_check_endpoint_name === 'string' && original.health_check_endpoint_name !== '' ? original.health_check_endpoint_name : undefined;
    const c = o.configured;
    const gateway: Gateway = {
      url: `http://127.0.0.1:${port}`,
      readyPath: c?.readyPath ?? '/ready',
      helloPath: helloName ? `/${helloName}` : (c?.helloPath ?? '/hello'),
      timeout: c?.timeout ?? '2m',
      keyProbe: c?.keyProbe,
      drill: { controlSecret: new Secret(secret), expect: { apis, policies } },
    };
    const details = { binary: o.binary, url: gateway.url, tyk_conf: tykFile, apis, policies, upstream: this.upstream.url, templates: templatePath };
    return { gateway, details };
  }

  /** Stops the gateway's process group (SIGTERM, SIGKILL after 5 s) and the scratch upstream; returns what could not be done. */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined) {
      this.dog?.disarm();
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
      killGroup(child.pid, 'SIGTERM');
      await Promise.race([exited, sleep(STOP_GRACE_MS)]);
      // Whatever the gateway started in its group goes too.
      killGroup(child.pid, 'SIGKILL');
      if (child.exitCode === null && child.signalCode === null) {
        await Promise.race([exited, sleep(2000)]);
        if (child.exitCode === null && child.signalCode === null) problems.push(`the drill gateway (pid ${child.pid}) did not stop`);
      }
    }
    const upstream = this.upstream;
    this.upstream = undefined;
    await upstream?.stop();
    const log = this.log;
    this.log = undefined;
    if (log) await new Promise<void>((r) => log.end(() => r()));
    return problems;
  }

  /** The last lines of the log (already scrubbed), on one line, for an error message. */
  async tail(): Promise<string> {
    await new Promise((r) => setTimeout(r, 100));
    try {
      const fh = await open(this.logFile, 'r');
      try {
        const { size } = await fh.stat();
        const n = Math.min(size, 2048);
        const buf = Buffer.alloc(n);
        await fh.read(buf, 0, n, size - n);
        const lines = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean).slice(-3);
        return lines.length ? `"${lines.join(' | ')}"` : 'it wrote nothing';
      } finally {
        await fh.close();
      }
    } catch {
      return 'no log';
    }
  }

  private pipeLog(stream: Readable): void {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      const cut = pending.lastIndexOf('\n');
      if (cut >= 0) {
        this.log?.write(scrub(pending.slice(0, cut + 1), this.secrets));
        pending = pending.slice(cut + 1);
      }
      if (pending.length > MAX_LINE) {
        this.log?.write(`${scrub(pending, this.secrets)}\n`);
        pending = '';
      }
    });
    stream.on('end', () => {
      if (pending) this.log?.write(`${scrub(pending, this.secrets)}\n`);
    });
    stream.on('error', () => undefined);
  }

  /** Copies the restored API definitions into the gateway's own apps/ folder, pointed at the scratch upstream; returns how many APIs they are. */
  private async copyApis(from: string, upstream: string): Promise<number> {
    let names: string[];
    try {
      names = (await readdir(from)).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return 0;
    }
    for (const n of names) {
      const text = await readFile(path.join(from, n), 'utf8');
      let out = text;
      try {
        const def: unknown = JSON.parse(text);
        if (def !== null && typeof def === 'object' && !Array.isArray(def)) out = JSON.stringify(drillApiDefinition(def as Record<string, unknown>, upstream), null, 2);
      } catch {
        // Copied as it is: the gateway refuses it as production would, and the loaded count shows it.
      }
      await writeFile(path.join(this.home, 'apps', n), out, { mode: 0o600 });
    }
    return names.filter(countsAsApi).length;
  }
}

async function firstDir(candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if (await stat(c).then((s) => s.isDirectory(), () => false)) return c;
  return undefined;
}

/** Policies the snapshot holds: one per *.json in a policy_path folder, or the entries of a policy_record_name file. */
async function countPolicies(p: { kind: 'folder' | 'file'; path: string }): Promise<number> {
  if (p.kind === 'folder') return (await readdir(p.path).catch(() => [])).filter((n) => n.endsWith('.json')).length;
  try {
    const j: unknown = JSON.parse(await readFile(p.path, 'utf8'));
    if (Array.isArray(j)) return j.length;
    return j !== null && typeof j === 'object' ? Object.keys(j).length : 0;
  } catch {
    return 0;
  }
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

async function waitForPort(port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal.throwIfAborted();
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
    if (ok) return true;
    await sleep(200, signal);
  }
  return false;
}
