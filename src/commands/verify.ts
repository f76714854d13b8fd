import { Args, Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand, interruptSignal, requireStoreFolder } from '../cli/base-command.js';
import { loadConfig } from '../core/config/load.js';
import { formatBytes } from '../core/duration.js';
import { badInput, EXIT_CODES } from '../core/errors.js';
import { verifySnapshots, type ObjectCheck, type VerifyResult } from '../core/integrity/verify-snapshots.js';
import { openReportingStore, reportingBackends } from '../cli/store-events.js';
import { namedStore } from '../core/copies/named-stores.js';

export default class Verify extends TykdrCommand<typeof Verify> {
  static override summary = 'Check that stored snapshots are intact and decrypt, without restoring them.';
  static override description = `For each object of the chosen snapshots: it exists in the store, its SHA-256 matches the manifest, and it decrypts (age authenticates every chunk) and decompresses completely with your key. Objects are streamed and discarded: nothing is written to disk.

ID is a snapshot id or "latest" (the default); --all checks every complete snapshot. --sample PCT checks a random share of the (snapshot, object) pairs, at least one: cheap enough to run daily over a whole store.

Needs the age identity (--identity, or encryption.identityFile), or the passphrase for passphrase-encrypted snapshots. Exits with 5 when any object failed, or (with --all) a snapshot's manifest is malformed; with 4 when only the store failed (an object or, with --all, a manifest it could not give). A snapshot without a manifest is an unfinished backup: skipped.

With signing.verifyKeys configured, each manifest's Ed25519 signature is checked first: a snapshot whose manifest is unsigned or not signed by a listed key is refused (exit 5) and none of its objects is read. Without verifyKeys the output says "manifest signature not checked".

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> verify',
    '<%= config.bin %> verify 20261121T093012Z-4f9a1c --identity /secure/tykdr-identity.txt',
    '<%= config.bin %> verify --all --sample 10',
    '<%= config.bin %> verify --all --json',
  ];

  static override args = {
    id: Args.string({ description: 'Snapshot id, or "latest" (default).' }),
  };

  static override flags = {
    all: Flags.boolean({ summary: 'Verify every complete snapshot.' }),
    store: Flags.string({ summary: 'Which store: "primary" (the store section, the default) or a name under copies:.' }),
    sample: Flags.string({ summary: 'Check only this percentage (0-100) of the objects, chosen at random.' }),
    identity: Flags.string({ char: 'i', summary: 'age identity file (default: encryption.identityFile).' }),
  };

  async run(): Promise<unknown> {
    const f = this.flags;
    if (f.all && this.args.id !== undefined) throw badInput(`both a snapshot id (${this.args.id}) and --all were given`, 'pass one of them');
    const samplePercent = f.sample === undefined ? undefined : Number(f.sample);
    if (samplePercent !== undefined && !(Number.isFinite(samplePercent) && samplePercent >= 0 && samplePercent <= 100)) {
      throw badInput(`--sample "${f.sample}" is not a percentage between 0 and 100`, 'e.g. --sample 10 checks a random 10% of the objects');
    }
    // Reads the store and what decrypts: the identity file (unless --identity names one) and the passphrase.
    const config = await loadConfig(this.flags.config, { purpose: 'decrypt', except: f.identity ? ['encryption.identityFile'] : [] });
    await requireStoreFolder(f.store ? namedStore(config, f.store).cfg : config.store, config.file);
    const interrupt = interruptSignal();
    let result: VerifyResult;
    try {
      result = await verifySnapshots({
        backends: reportingBackends((l) => this.note(l)),
        config,
        ...(f.store ? { store: openReportingStore(namedStore(config, f.store).cfg, (l) => this.note(l)) } : {}),
        snapshots: f.all ? 'all' : this.args.id === undefined ? [] : [this.args.id],
        samplePercent,
        identityFile: f.identity,
        signal: interrupt.signal,
        progress: this.jsonEnabled() ? undefined : { objectDone: (c) => this.printCheck(c) },
      });
    } finally {
      interrupt.dispose();
    }
    if (!this.jsonEnabled()) this.printSummary(result);
    if (!result.ok) {
      // A manifest the store failed to give (result.unreadable) is a store failure too; a damaged one is not.
      const onlyStore = result.refused.length === 0 && result.damaged.length === 0 && result.objects.every((o) => o.status === 'ok' || o.kind === 'storeError');
      process.exitCode = onlyStore ? EXIT_CODES.storeError : EXIT_CODES.integrityError;
    }
    return {
      location: result.location,
      ok: result.ok,
      sample_percent: result.samplePercent,
      checked: result.checked,
      failed: result.failed,
      snapshots: result.snapshots.map((s) => ({
        id: s.id,
        created_at: s.createdAt,
        objects: s.objects,
        checked: s.checked,
        failed: s.failed,
        signature: { status: s.signature.status, signed: s.signature.signed, manifest_sha256: s.signature.manifestSha256, key: s.signature.key?.publicKey ?? null, detail: s.signature.detail },
      })),
      refused: result.refused,
      skipped: result.skipped,
      unreadable: result.unreadable,
      damaged: result.damaged,
      objects: result.objects.map((o) => ({
        snapshot: o.snapshot,
        component: o.component,
        object: o.object,
        key: o.key,
        status: o.status,
        stored_bytes: o.storedBytes,
        ...(o.plaintextBytes === undefined ? {} : { plaintext_bytes: o.plaintextBytes }),
        ...(o.message === undefined ? {} : { message: o.message, fix: o.fix ?? null, kind: o.kind }),
        duration_ms: o.durationMs,
      })),
    };
  }

  private printCheck(c: ObjectCheck): void {
    if (c.status === 'ok') {
      this.log(`ok      ${c.snapshot}  ${c.object}  ${formatBytes(c.storedBytes)} stored, ${formatBytes(c.plaintextBytes ?? 0)} plaintext`);
    } else {
      this.log(`FAILED  ${c.snapshot}  ${c.object}: ${c.message}`);
      if (c.fix) this.log(`        Fix: ${c.fix}`);
    }
  }

  private printSummary(r: VerifyResult): void {
    // Unfinished backups ('no manifest: ...') and manifests of another format: the reason says which.
    for (const s of r.skipped) this.log(`skipped ${s.id}: ${s.reason}`);
    for (const s of r.unreadable) {
      this.log(`FAILED  ${s.id}  (manifest): the store failed to give it (${s.reason}); nothing of the snapshot was checked`);
      this.log('        Fix: check the store, then run verify again');
    }
    for (const s of r.damaged) {
      this.log(`FAILED  ${s.id}  (manifest): ${s.reason}`);
      this.log('        Fix: restore from another snapshot or a copy store (tykdr snapshots --store NAME); this one cannot be restored as it is');
    }
    for (const s of r.refused) this.log(`REFUSED ${s.id}: ${s.reason}`);
    const notChecked = r.snapshots.filter((s) => s.signature.status === 'not-checked').length;
    if (notChecked > 0) this.log(`manifest signature not checked for ${notChecked} snapshot(s): no signing.verifyKeys configured`);
    else if (r.snapshots.length > r.refused.length) this.log(`manifest signature verified for ${r.snapshots.length - r.refused.length} snapshot(s)`);
    const scope = `${r.checked} object(s) in ${r.snapshots.length} snapshot(s)${r.samplePercent < 100 ? ` (a ${r.samplePercent}% sample)` : ''}`;
    const refused = r.refused.length > 0 ? `; ${r.refused.length} snapshot(s) REFUSED for their manifest signature` : '';
    const unread = r.unreadable.length > 0 ? `; ${r.unreadable.length} snapshot(s) FAILED: the store failed to give their manifest` : '';
    const damaged = r.damaged.length > 0 ? `; ${r.damaged.length} snapshot(s) FAILED: their manifest is damaged` : '';
    const rest = `${refused}${unread}${damaged}`;
    if (r.checked === 0) this.log(`Nothing checked in ${r.location}: ${scope}${rest}.`);
    else if (r.ok) this.log(`All ${scope} verified in ${r.location}.`);
    else if (r.failed === 0) this.log(`${scope} checked and intact in ${r.location}${rest}.`);
    else this.log(`${r.failed} of ${scope} FAILED verification in ${r.location}${rest}.`);
  }
}
