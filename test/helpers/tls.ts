import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI. */
export async function makeTlsFiles(): Promise<{ dir: string; ca: string; cert: string; key: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-tls-'));
  const f = (n: string) => path.join(dir, n);
  await exec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=tykdr test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await exec('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await exec('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  return { dir, ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}
