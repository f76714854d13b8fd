import { Header, Pax } from 'tar';

/** One regular file of a tar stream, with its size fixed in advance. */
export interface TarFile {
  /** Entry path inside the archive (relative, "/"-separated). */
  name: string;
  /** Exactly the bytes `content` yields; written in the header before them. */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  /** The file's bytes; must yield exactly `size` bytes in total. */
  content: () => AsyncIterable<Buffer>;
}

const BLOCK = 512;

/**
 * A POSIX tar (ustar, with a pax header only when a field does not fit) of files whose sizes are decided
 * before their bytes are read. npm tar's packer stats and reads files itself and fails when a file grows
 * while it is read (the live AOF does); here the caller decides how many bytes of each file to take.
 * Throws when a file yields more or fewer bytes than announced. `beforeEnd` runs after the last file's
 * bytes were read and before the end-of-archive blocks are yielded.
 */
export async function* tarStream(files: TarFile[], opts: { beforeEnd?: () => Promise<void> } = {}): AsyncGenerator<Buffer> {
  for (const f of files) {
    const data = { path: f.name, mode: f.mode & 0o7777, uid: f.uid, gid: f.gid, size: f.size, mtime: f.mtime, type: 'File' as const };
    const h = new Header(data);
    h.encode();
    if (h.needPax) yield new Pax(data).encode();
    yield h.block!;
    let sent = 0;
    for await (const chunk of f.content()) {
      sent += chunk.length;
      if (sent > f.size) throw new Error(`${f.name}: more than the ${f.size} bytes announced`);
      if (chunk.length > 0) yield chunk;
    }
    if (sent !== f.size) throw new Error(`${f.name}: ${sent} bytes instead of the ${f.size} announced (the file shrank while it was read)`);
    const pad = (BLOCK - (f.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  // Runs once every file was read, before the consumer can see the archive end.
  await opts.beforeEnd?.();
  yield Buffer.alloc(2 * BLOCK);
}
