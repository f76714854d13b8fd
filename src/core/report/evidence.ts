import { hostname, userInfo } from 'node:os';
import type { Store } from '../interfaces/store.js';
import { formatBytes, formatCount } from '../duration.js';
import { badInput } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { Plan } from '../plan/plan.js';
import { loadSigner } from '../signing/keys.js';
import { trustedManifest, type ManifestSignatureCheck } from '../signing/manifest-signature.js';
import { TOOL_VERSION } from '../version.js';

/**
 * The evidence block of a restore or drill report: what an auditor needs to tie the run to exactly one
 * snapshot, one plan, one person or schedule, and one change ticket. No secret is in it: keys appear as
 * fingerprints (encryption recipients) or public keys (signing).
 */
export interface Evidence {
  snapshot_id: string;
  /** SHA-256 (hex) of the manifest's exact bytes as read from the store. */
  manifest_sha256: string;
  manifest_signature: {
    status: ManifestSignatureCheck['status'];
    /** Fingerprint of the trusted key that signed the manifest (verified only). */
    key_fingerprint: string | null;
    detail: string;
  };
  /** Every artifact of the snapshot, from the manifest. */
  artifacts: Array<{ component: string; name: string; sha256: string; stored_bytes: number; plaintext_bytes: number }>;
  /** Who the snapshot was encrypted to: recipient fingerprints, never keys. */
  encryption: { scheme: string; recipient_fingerprints: string[]; passphrase: boolean };
  plan: { name: string; file: string; version: number; sha256: string | null };
  /** user@host that ran tykdr. */
  operator: string;
  /** "manual", or "schedule <job>" for the daemon. */
  trigger: string;
  ticket: string | null;
  tool_version: string;
  /** The public key (tykdr-ed25519:...) whose signature accompanies this report, or null when unsigned. */
  report_signing_key: string | null;
}

export interface EvidenceInput {
  store: Store;
  manifest: Manifest;
  plan: Pick<Plan, 'name' | 'file' | 'version' | 'sha256'>;
  config: { signing: { keyFile?: string; verifyKeys: string[] } };
  trigger?: string;
  ticket?: string;
  signal?: AbortSignal;
}

/**
 * Builds the evidence of a run before it touches anything. It checks the manifest's signature first:
 * with signing.verifyKeys configured, an unsigned or badly signed manifest is refused (integrityError,
 * exit 5). It loads signing.keyFile, so a bad key fails here rather than after the restore.
 */
export async function gatherEvidence(input: EvidenceInput): Promise<Evidence> {
  const { manifest, plan, config } = input;
  const ticket = checkTicket(input.ticket);
  const signature = await trustedManifest(input.store, manifest, config.signing, input.signal);
  const signer = config.signing.keyFile === undefined ? undefined : await loadSigner(config.signing.keyFile);
  return {
    snapshot_id: manifest.id,
    manifest_sha256: signature.manifestSha256,
    manifest_signature: { status: signature.status, key_fingerprint: signature.key?.fingerprint ?? null, detail: signature.detail },
    artifacts: Object.entries(manifest.components).map(([component, c]) => ({
      component,
      name: c.artifact.name,
      sha256: c.artifact.sha256,
      stored_bytes: c.artifact.stored_bytes,
      plaintext_bytes: c.artifact.plaintext_bytes,
    })),
    encryption: {
      scheme: manifest.encryption.scheme,
      recipient_fingerprints: manifest.encryption.recipients.map((r) => r.fingerprint),
      passphrase: manifest.encryption.passphrase,
    },
    plan: { name: plan.name, file: plan.file, version: plan.version, sha256: plan.sha256 ?? null },
    operator: operator(),
    trigger: input.trigger ?? 'manual',
    ticket,
    tool_version: TOOL_VERSION,
    report_signing_key: signer?.publicKey ?? null,
  };
}

/** A --ticket value: one line of printable text, at most 200 characters. */
export function checkTicket(ticket: string | undefined): string | null {
  if (ticket === undefined) return null;
  const t = ticket.trim();
  if (t === '' || t.length > 200 || /[\p{Cc}]/u.test(t)) {
    const shown = JSON.stringify(ticket.length > 60 ? `${ticket.slice(0, 57)}...` : ticket);
    throw badInput(`--ticket ${shown} is not a ticket reference: it must be one line of 1 to 200 printable characters`, 'pass the change or incident ticket id, e.g. --ticket CHG-1234');
  }
  return t;
}

/** user@host of this process. */
export function operator(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? process.env.LOGNAME ?? `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return `${user}@${hostname()}`;
}

/** Label and value rows, in the order both renderers show them. */
export function evidenceRows(e: Evidence): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ['Snapshot', e.snapshot_id],
    ['Manifest SHA-256', e.manifest_sha256],
    ['Manifest signature', `${e.manifest_signature.status.toUpperCase()}: ${e.manifest_signature.detail}`],
  ];
  for (const a of e.artifacts) {
    rows.push([
      `Artifact ${a.component}`,
      `${a.name}: SHA-256 ${a.sha256}, ${formatBytes(a.stored_bytes)} stored (${formatCount(a.stored_bytes)} bytes), ${formatBytes(a.plaintext_bytes)} plaintext`,
    ]);
  }
  rows.push(
    [
      'Encrypted to',
      e.encryption.passphrase
        ? `${e.encryption.scheme}, a passphrase`
        : `${e.encryption.scheme}, recipient fingerprint(s) ${e.encryption.recipient_fingerprints.join(', ') || 'none'}`,
    ],
    ['Plan', `${e.plan.name} (${e.plan.file}, version ${e.plan.version})`],
    ['Plan SHA-256', e.plan.sha256 ?? 'unknown'],
    ['Operator', e.operator],
    ['Trigger', e.trigger],
    ['Ticket', e.ticket ?? 'none'],
    ['tykdr version', e.tool_version],
    ['Report signed by', e.report_signing_key ?? 'not signed (no signing.keyFile configured)'],
  );
  return rows;
}
