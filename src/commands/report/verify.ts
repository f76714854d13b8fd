import { Args, Flags } from '@oclif/core';
import { EXIT_CODES_HELP, TykdrCommand } from '../../cli/base-command.js';
import { badInput, TykdrError } from '../../core/errors.js';
import { readPublicKeyArg, verifyKeysOf } from '../../core/signing/keys.js';
import { verifyReportFile } from '../../core/signing/report-signature.js';

export default class ReportVerify extends TykdrCommand<typeof ReportVerify> {
  static override summary = "Check a restore or drill report's Ed25519 signature.";
  static override description = `Reports written with signing.keyFile set carry a detached signature, FILE.sig (64 raw bytes, Ed25519 over the JSON's exact bytes), next to the JSON locally and under reports/<snapshot>/ in the store. This checks it against --key (the signing host's public key as \`tykdr key generate --signing\` printed it, tykdr-ed25519:..., or a file holding it or a PEM public key), or else against signing.verifyKeys in tykdr.yaml.

Exit 0: a trusted key signed exactly these bytes. Exit 5: the report changed after it was signed, or another key signed it. Exit 2: the report or its .sig file is missing, or there is no key to check with. The same check by hand, with openssl, is in docs/FORMAT.md.

${EXIT_CODES_HELP}`;

  static override examples = [
    '<%= config.bin %> report verify tykdr-reports/drill-20261121T093012Z-4f9a1c.json',
    '<%= config.bin %> report verify drill-20261121T093012Z-4f9a1c.json --key tykdr-ed25519:rm2+QT2yQAcKSLQl9cxomGOZx8czaoqIIN9r5DVTT6Y=',
    '<%= config.bin %> report verify restore-20261121T093012Z-4f9a1c.json --key ./backup-host.pub --json',
  ];

  static override args = {
    file: Args.string({ description: 'The report JSON (<kind>-<id>.json); its signature is FILE.sig.', required: true }),
  };

  static override flags = {
    key: Flags.string({
      char: 'k',
      summary: 'Public key to check with: tykdr-ed25519:..., or a file holding it (default: signing.verifyKeys from --config).',
      multiple: true,
    }),
  };

  async run(): Promise<unknown> {
    const keys = this.flags.key?.length ? await Promise.all(this.flags.key.map((k) => readPublicKeyArg(k, '--key'))) : await this.configuredKeys();
    const v = await verifyReportFile(this.args.file, keys);
    const r = v.report;
    this.log(`OK: ${v.file} is signed by ${v.key.fingerprint} (${v.key.publicKey})`);
    if (r.id) this.log(`  ${r.kind ?? 'report'} ${r.id} of snapshot ${r.snapshot ?? '?'}: ${r.status ?? '?'}, finished ${r.finished_at ?? '?'}`);
    return { ok: true, file: v.file, signature_file: v.signatureFile, key: v.key.publicKey, key_fingerprint: v.key.fingerprint, report: r };
  }

  /** signing.verifyKeys from --config; without a readable config, bad input that points at --key. */
  private async configuredKeys() {
    try {
      return verifyKeysOf((await this.loadConfig('store')).signing);
    } catch (err) {
      if (err instanceof TykdrError && err.kind === 'badInput') {
        throw badInput(`no --key given, and signing.verifyKeys could not be read: ${err.message}`, 'pass --key tykdr-ed25519:... (the signing host\'s public key), or --config with signing.verifyKeys', err);
      }
      throw err;
    }
  }
}
