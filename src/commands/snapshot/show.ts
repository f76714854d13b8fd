import { Args, Flags } from '@oclif/core';
import { namedStore, PRIMARY } from '../../core/copies/named-stores.js';
import { openReportingStore } from '../../cli/store-events.js';
import { resolveSnapshot } from '../../core/catalog.js';
import { formatBytes, formatDuration } from '../../core/duration.js';
import { EXIT_CODES_HELP, TykdrCommand, requireStoreFolder } from '../../cli/base-command.js';
import { checkManifestSignature } from '../../core/signing/manifest-signature.js';

export default class SnapshotShow extends TykdrCommand<typeof SnapshotShow> {
  static override summary = 'Show one snapshot: its components, sizes, checksums and source facts.';
  static override description = `Reads the snapshot's manifest. ID may be "latest" for the newest complete snapshot. With --json, prints the manifest itself (the signature status is in \`tykdr snapshots --json\`).

The "signature" line says whether the manifest is signed (manifest.json.sig) and, with signing.verifyKeys configured, whether a listed key signed it; "manifest signature not checked" without verifyKeys.

${EXIT_CODES_HELP}`;

  static override examples = ['<%= config.bin %> snapshot show latest', '<%= config.bin %> snapshot show 20261121T093012Z-4f9a1c --json'];

  static override flags = {
    store: Flags.string({ summary: 'Which store: "primary" (the store section, the default) or a name under copies:.' }),
  };

  static override args = {
    id: Args.string({ description: 'Snapshot id, or "latest".', required: true }),
  };

  async run(): Promise<unknown> {
    const config = await this.loadConfig('store');
    const named = namedStore(config, this.flags.store ?? PRIMARY);
    await requireStoreFolder(named.cfg, config.file);
    const store = openReportingStore(named.cfg, (l) => this.note(l));
    const m = await resolveSnapshot(store, this.args.id);
    const signature = await checkManifestSignature(store, m, config.signing);
    this.log(`Snapshot ${m.id} (complete)`);
    this.log(`  created   ${m.created_at} on ${m.host} by tykdr ${m.tool.version}`);
    this.log(`  finished  ${m.completed_at}; consistency spread ${formatDuration(m.consistency_spread_ms)}`);
    this.log(`  signature ${signature.status === 'verified' ? 'VERIFIED' : signature.status === 'not-checked' ? (signature.signed ? 'signed' : 'unsigned') : signature.status.toUpperCase()}: ${signature.detail}`);
    this.log(`  manifest  sha256 ${signature.manifestSha256}`);
    this.log(
      `  encrypted age-v1 to ${m.encryption.passphrase ? 'a passphrase' : m.encryption.recipients.map((r) => r.fingerprint).join(', ')}`,
    );
    if (m.tyk) {
      this.log(
        `  tyk       hash_keys=${String(m.tyk.hash_keys)} hash_key_function=${String(m.tyk.hash_key_function)} ` +
          `secret ${m.tyk.secret_fingerprint ? 'fingerprinted' : 'not set'} (${absolute(String(m.tyk.file))})`,
      );
    }
    for (const [name, c] of Object.entries(m.components)) {
      const a = c.artifact;
      this.log(`  ${name} (${c.kind}, tier ${c.tier}: RTO ${formatDuration(c.objective.rto_seconds * 1000)}, RPO ${formatDuration(c.objective.rpo_seconds * 1000)})`);
      this.log(`    object        ${a.name}: data ${formatBytes(a.plaintext_bytes)}, stored ${formatBytes(a.stored_bytes)} (${a.compression}-compressed, age-encrypted)`);
      this.log(`    sha256        ${a.sha256}`);
      this.log(`    consistent    ${c.consistent_at} (took ${formatDuration(c.duration_ms)})`);
      for (const [k, v] of Object.entries(c.source)) {
        this.log(`    ${k.padEnd(13)} ${sourceFact(k, v)}`);
      }
    }
    return m;
  }
}

/** Tar entries are stored relative to / (as tar does); people read them as the absolute paths they were. */
function absolute(tarPath: string): string {
  return tarPath.startsWith('/') ? tarPath : `/${tarPath}`;
}

/** A source fact for people: Unix times (rdb_ctime) also as a date, objects as JSON. */
function sourceFact(key: string, v: unknown): string {
  const seconds = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (key.endsWith('_ctime') && Number.isFinite(seconds) && seconds > 0 && seconds < 1e11) return `${new Date(seconds * 1000).toISOString()} (${String(v)})`;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
