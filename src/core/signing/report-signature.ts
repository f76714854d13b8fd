import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { badInput, integrityError } from '../errors.js';
import { findSigningKey, type VerifyKey } from './keys.js';

/** The detached signature of a signed file: the same path with ".sig" appended. */
export const signatureFileOf = (file: string): string => `${file}.sig`;

export interface ReportVerification {
  file: string;
  signatureFile: string;
  key: { publicKey: string; fingerprint: string };
  /** A few fields of the report, read after the signature verified. */
  report: { id?: string; kind?: string; snapshot?: string; status?: string; finished_at?: string };
}

/**
 * Checks a report's detached Ed25519 signature (FILE.sig) over the exact bytes of its JSON.
 * - badInput (exit 2): the file or its signature is missing, or FILE is not the JSON report;
 * - integrityError (exit 5): no key in `keys` signed these bytes (a changed byte, or another key).
 */
export async function verifyReportFile(file: string, keys: readonly VerifyKey[]): Promise<ReportVerification> {
  let abs = path.resolve(file);
  if (abs.endsWith('.json.sig')) abs = abs.slice(0, -'.sig'.length);
  if (/\.(md|html)$/.test(abs)) {
    throw badInput(
      `${abs} is a rendering of a report; the signature covers the report's JSON`,
      `pass ${abs.replace(/\.(md|html)$/, '.json')} (the Markdown and HTML are views of it)`,
    );
  }
  if (keys.length === 0) {
    throw badInput('no public key to verify the report with', 'pass --key tykdr-ed25519:... (the signing host\'s public key), or set signing.verifyKeys in tykdr.yaml');
  }
  const data = await readOrBadInput(abs, `report ${abs}`, 'check the path: reports are <kind>-<id>.json in restore.reportDir or under reports/<snapshot>/ in the store');
  const sigFile = signatureFileOf(abs);
  const sig = await readOrBadInput(
    sigFile,
    `report ${abs} is unsigned: its signature ${sigFile}`,
    'only reports written with signing.keyFile set are signed; copy the .sig file along with the report',
  );
  const key = findSigningKey(data, sig, keys);
  if (!key) {
    throw integrityError(
      `signature of report ${abs} does not verify with ${keys.length === 1 ? `key ${keys[0]!.fingerprint}` : `any of the keys ${keys.map((k) => k.fingerprint).join(', ')}`}: the report was changed after it was signed, or another key signed it`,
      'do not trust this report; compare it with the copy stored next to the snapshot (reports/<snapshot>/), and check you have the signing host\'s public key',
    );
  }
  let report: ReportVerification['report'] = {};
  try {
    const r = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    const snapshot = r.snapshot as { id?: unknown } | undefined;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    report = { id: str(r.id), kind: str(r.kind), snapshot: str(snapshot?.id), status: str(r.status), finished_at: str(r.finished_at) };
  } catch {
    // signed bytes that are not JSON: the signature still holds; there is just nothing to summarise
  }
  return { file: abs, signatureFile: sigFile, key: { publicKey: key.publicKey, fingerprint: key.fingerprint }, report };
}

async function readOrBadInput(file: string, what: string, fix: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(`${what} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? err})`}`, fix, err);
  }
}
