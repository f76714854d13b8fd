import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigStdout } from '../../src/backends/postgres/source/stdout-buffer.js';

let dir: string;
const script = async (file: string, body: string) => {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
};
const PG_DUMP_VERSION = 'echo "pg_dump (PostgreSQL) 15.18"';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tykdr-stdbuf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pg_dump's stdout buffer (stdbuf -o 1M where a probe of that pg_dump under it is clean)", () => {
  it('wraps pg_dump in the stdbuf found on PATH when `stdbuf -o 1M pg_dump --version` is clean', async () => {
    const stdbuf = await script(path.join(dir, 'ok/bin/stdbuf'), 'shift 2; exec "$@"');
    const pgDump = await script(path.join(dir, 'ok/pg_dump'), PG_DUMP_VERSION);
    const spawnWith = await bigStdout(pgDump, { PATH: `/nonexistent:${path.dirname(stdbuf)}:/usr/bin:/bin` });
    expect(spawnWith(['--format=custom', '--snapshot=X'])).toEqual({ command: stdbuf, args: ['-o', '1M', pgDump, '--format=custom', '--snapshot=X'] });
  });

  it('runs pg_dump as it is when PATH has no stdbuf', async () => {
    const pgDump = await script(path.join(dir, 'none/pg_dump'), PG_DUMP_VERSION);
    const spawnWith = await bigStdout(pgDump, { PATH: path.join(dir, 'none') });
    expect(spawnWith(['-Fc'])).toEqual({ command: pgDump, args: ['-Fc'] });
  });

  it('runs pg_dump as it is when stdbuf fails (cannot preload its library)', async () => {
    const stdbuf = await script(path.join(dir, 'broken/bin/stdbuf'), "echo \"stdbuf: failed to find 'libstdbuf.so'\" >&2; exit 125");
    const pgDump = await script(path.join(dir, 'broken/pg_dump'), PG_DUMP_VERSION);
    const spawnWith = await bigStdout(pgDump, { PATH: `${path.dirname(stdbuf)}:/usr/bin:/bin` });
    expect(spawnWith(['-Fc'])).toEqual({ command: pgDump, args: ['-Fc'] });
  });

  it('runs pg_dump as it is when the probe writes to stderr (a loader warning would fail the dump: its stderr is judged)', async () => {
    const stdbuf = await script(path.join(dir, 'warn/bin/stdbuf'), 'shift 2; echo "ERROR: ld.so: object cannot be preloaded: ignored." >&2; exec "$@"');
    const pgDump = await script(path.join(dir, 'warn/pg_dump'), PG_DUMP_VERSION);
    const spawnWith = await bigStdout(pgDump, { PATH: `${path.dirname(stdbuf)}:/usr/bin:/bin` });
    expect(spawnWith(['-Fc'])).toEqual({ command: pgDump, args: ['-Fc'] });
  });

  it('runs it as it is when the probed binary is not a pg_dump', async () => {
    const stdbuf = await script(path.join(dir, 'other/bin/stdbuf'), 'shift 2; exec "$@"');
    const notDump = await script(path.join(dir, 'other/pg_dump'), 'echo hello');
    const spawnWith = await bigStdout(notDump, { PATH: `${path.dirname(stdbuf)}:/usr/bin:/bin` });
    expect(spawnWith([]).command).toBe(notDump);
  });
});
