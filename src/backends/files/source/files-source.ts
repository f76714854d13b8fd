import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { create as createTar } from 'tar';
import type { FilesComponent } from '../../../core/config/load.js';
import { tykConfFacts, type TykConfFacts } from '../../../core/tyk/tyk-conf.js';
import type { Source, SourceArtifact } from '../../../core/interfaces/source.js';
import { selectFiles, type FileSelection } from './walk.js';

/**
 * Config files as a tarball (ustar/pax via npm `tar`): modes, owners and mtimes kept, symlinks kept as
 * links. Entry names are the absolute paths without the leading "/", so several roots never collide
 * and a restore knows where each file belongs.
 */
export class FilesSource implements Source {
  readonly kind = 'files';
  readonly component: string;

  constructor(private readonly cfg: FilesComponent) {
    this.component = cfg.name;
  }

  private select(signal?: AbortSignal): Promise<FileSelection> {
    return selectFiles({ component: this.cfg.name, roots: this.cfg.roots, include: this.cfg.include, exclude: this.cfg.exclude, signal });
  }

  async check(signal?: AbortSignal): Promise<void> {
    await this.select(signal);
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const consistentAt = new Date();
    const sel = await this.select(signal);
    const tyk = await this.readTykConf(sel);
    const pack = createTar(
      { cwd: '/', portable: false, noDirRecurse: true, follow: false, gzip: false },
      sel.entries.map((e) => path.relative('/', e)),
    );
    const stream = Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
    // An abort ends the stream with an AbortError (and stops reading files), whatever its consumer does.
    if (signal) addAbortSignal(signal, stream);
    return {
      stream,
      format: 'tar',
      consistentAt,
      finish: async () => ({
        source: {
          role: this.cfg.role,
          roots: this.cfg.roots,
          files: sel.files,
          directories: sel.directories,
          symlinks: sel.symlinks,
          file_bytes: sel.bytes,
          ...(tyk && 'error' in tyk ? { tyk_conf_error: tyk.error } : {}),
        },
        ...(tyk && !('error' in tyk) ? { tyk: { ...tyk } } : {}),
      }),
    };
  }

  private async readTykConf(sel: FileSelection): Promise<TykConfFacts | { error: string } | undefined> {
    for (const root of this.cfg.roots) {
      const file = path.join(root, this.cfg.tykConf);
      if (!sel.entries.includes(file)) continue;
      const inTar = path.relative('/', file);
      try {
        return tykConfFacts(inTar, await readFile(file, 'utf8'));
      } catch (err) {
        return { error: `${inTar} is not valid JSON: hash_keys and the secret fingerprint were not recorded (${(err as Error).message})` };
      }
    }
    return undefined;
  }
}
