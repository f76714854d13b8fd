import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Store as S3StoreConfig } from '../../src/core/config/load.js';
import { Secret } from '../../src/core/secret.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { freePort } from './net.js';
import { toolsBin } from './paths.js';
import { makeTlsFiles } from './tls.js';

export interface Minio {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  client: S3Client;
  /** With `tls`: the CA that signed MinIO's certificate (PEM file), for clients to trust. */
  ca?: string;
  createBucket(name: string, opts?: { objectLock?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a real MinIO (built by scripts/tools.sh into .tools/bin) on a free port in a temp dir; with `tls`,
 * over https with a throwaway CA (`ca`), which `client` trusts.
 */
export async function startMinio(opts: { tls?: boolean } = {}): Promise<Minio> {
  const bin = path.join(toolsBin, 'minio');
  if (!existsSync(bin)) throw new Error(`MinIO is not built at ${bin}: run bash scripts/tools.sh`);
  const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-minio-'));
  const port = await freePort();
  const certs = path.join(dir, 'certs');
  let ca: string | undefined;
  if (opts.tls) {
    const tls = await makeTlsFiles();
    await mkdir(certs, { recursive: true });
    await copyFile(tls.cert, path.join(certs, 'public.crt'));
    await copyFile(tls.key, path.join(certs, 'private.key'));
    ca = path.join(dir, 'ca.pem');
    await copyFile(tls.ca, ca);
    await rm(tls.dir, { recursive: true, force: true });
  }
  const agent = ca ? new https.Agent({ ca: await readFile(ca) }) : undefined;
  const accessKeyId = 'tykdr-test';
  const secretAccessKey = 'tykdr-test-secret-key-0123456789';
  const proc: ChildProcess = spawn(bin, ['server', path.join(dir, 'data'), '--address', `127.0.0.1:${port}`, '--quiet', ...(ca ? ['--certs-dir', certs] : [])], {
    env: {
      ...process.env,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: 'off',
      MINIO_CI_CD: '1',
      // A static KMS key so SSE-S3 (AES256) uploads work in single-drive mode.
      MINIO_KMS_SECRET_KEY: 'tykdr-test-key:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const endpoint = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`MinIO exited (${proc.exitCode}): ${stderr}`);
    if ((await healthStatus(`${endpoint}/minio/health/live`, agent)) === 200) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`MinIO did not become ready on ${endpoint}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    ...(agent ? { requestHandler: { httpsAgent: agent } } : {}),
  });
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    client,
    ...(ca ? { ca } : {}),
    createBucket: async (name, opts = {}) => {
      await client.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: opts.objectLock }));
    },
    stop: async () => {
      client.destroy();
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The status of a GET (0 when it failed), over https trusting `agent`'s CA when given. */
async function healthStatus(url: string, agent: https.Agent | undefined): Promise<number> {
  if (!agent) return fetch(url).then((r) => r.status, () => 0);
  return new Promise((resolve) => {
    const req = https.get(url, { agent, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** An S3 store config for `bucket` on this MinIO, with the small parts tests use (5 MiB, 2 at once); `over` wins. */
export function minioStoreConfig(minio: Minio, bucket: string, prefix: string, over: Partial<S3StoreConfig> = {}): S3StoreConfig {
  return {
    kind: 's3',
    bucket,
    prefix,
    region: 'us-east-1',
    endpoint: minio.endpoint,
    forcePathStyle: true,
    accessKeyId: minio.accessKeyId,
    secretAccessKey: new Secret(minio.secretAccessKey),
    partSizeMiB: 5,
    uploadConcurrency: 2,
    ...over,
  } as S3StoreConfig;
}

/**
 * A MinIO holding `bucket`, and a TCP fault proxy in front of it (its `endpoint` is what a store config points at);
 * both are stopped through `cleanups`.
 */
export async function startMinioBehindProxy(bucket: string, cleanups: Array<() => Promise<unknown>>): Promise<{ minio: Minio; proxy: FaultProxy }> {
  const minio = await startMinio();
  cleanups.push(() => minio.stop());
  await minio.createBucket(bucket);
  const proxy = await startFaultProxy({ port: Number(new URL(minio.endpoint).port) });
  cleanups.push(() => proxy.close());
  return { minio, proxy };
}
