import { integrityError } from '../../../core/errors.js';

const S_START = 0; // at a command boundary: expect '*' (or '#', an annotation line)
const S_LINE = 1; // inside a header or annotation line, up to its '\n'
const S_DATA = 2; // inside an argument's bytes
const S_CRLF = 3; // the CRLF after an argument's bytes

const L_ANNOTATION = 0;
const L_ARGC = 1; // "*<argc>"
const L_ARGLEN = 2; // "$<len>"

/** Longest header line accepted ("*<argc>" or "$<len>"); annotation lines are skipped whatever their length. */
const MAX_HEADER = 24;

/**
 * Checks an append-only file (what Redis appends: commands as `*<argc>` followed by argc `$<len>` bulk
 * strings, and `#...` annotation lines between commands) as it streams past, in constant memory, and
 * tracks the last safe place to cut it: just after a complete command that is not inside a MULTI block.
 *
 * A copy of the live incremental AOF taken while Redis appends may stop inside a command (or inside a
 * transaction). Redis would then need `aof-load-truncated yes` (or revert the MULTI); cut at `safeEnd`,
 * the copy loads cleanly anywhere.
 */
export class AofScanner {
  /** Complete commands seen. */
  commands = 0;
  /** Bytes fed so far. */
  bytes = 0;
  /** Offset just after the last complete command outside a MULTI block. */
  safeEnd = 0;
  private state = S_START;
  private lineKind = L_ANNOTATION;
  private line = '';
  private argsLeft = 0;
  private argIndex = 0;
  private dataLeft = 0;
  private crlfLeft = 0;
  private name = '';
  private inMulti = false;

  /** `where` names the file in messages. */
  constructor(private readonly where: string) {}

  /** True when everything fed so far ends on a safe boundary (nothing would be cut). */
  get complete(): boolean {
    return this.safeEnd === this.bytes;
  }

  feed(chunk: Buffer): void {
    const base = this.bytes;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case S_DATA: {
          const take = Math.min(this.dataLeft, n - i);
          // The command name is all we look at (MULTI / EXEC); larger arguments are skipped, not copied.
          if (this.argIndex === 0 && this.name.length < 8) this.name += chunk.toString('latin1', i, i + Math.min(take, 8 - this.name.length));
          this.dataLeft -= take;
          i += take;
          if (this.dataLeft === 0) {
            this.state = S_CRLF;
            this.crlfLeft = 2;
          }
          break;
        }
        case S_CRLF: {
          const want = this.crlfLeft === 2 ? 0x0d : 0x0a;
          if (chunk[i] !== want) throw this.bad(base + i, 'an argument is not followed by CRLF');
          i++;
          if (--this.crlfLeft === 0) this.endArgument(base + i);
          break;
        }
        case S_START: {
          const b = chunk[i]!;
          if (b === 0x2a) this.startLine(L_ARGC);
          else if (b === 0x23) this.startLine(L_ANNOTATION);
          else throw this.bad(base + i, `expected a command ("*") but found byte 0x${b.toString(16).padStart(2, '0')}`);
          i++;
          break;
        }
        default: {
          const nl = chunk.indexOf(0x0a, i);
          const end = nl < 0 ? n : nl;
          if (this.lineKind !== L_ANNOTATION) {
            this.line += chunk.toString('latin1', i, end);
            if (this.line.length > MAX_HEADER) throw this.bad(base + i, `header line too long (${JSON.stringify(this.line.slice(0, 30))}...)`);
          }
          i = end;
          if (nl >= 0) {
            i++;
            this.endLine(base + i);
          }
        }
      }
    }
    this.bytes += n;
  }

  private startLine(kind: number): void {
    this.state = S_LINE;
    this.lineKind = kind;
    this.line = '';
  }

  private endLine(at: number): void {
    if (this.lineKind === L_ANNOTATION) {
      this.state = S_START; // annotations (e.g. #TS:...) do not move the safe cut
      return;
    }
    // An argument count line arrives without its '*' (consumed in S_START); a length line with its '$'.
    const text = this.lineKind === L_ARGLEN ? (this.line.startsWith('$') ? this.line.slice(1) : '') : this.line;
    if (this.lineKind === L_ARGLEN && text === '') throw this.bad(at, `expected an argument ("$") but found ${JSON.stringify(this.line.slice(0, 10))}`);
    const m = /^(\d+)\r$/.exec(text);
    if (!m) throw this.bad(at, `invalid ${this.lineKind === L_ARGC ? 'argument count' : 'argument length'} line ${JSON.stringify(this.line)}`);
    const num = Number(m[1]);
    if (this.lineKind === L_ARGC) {
      if (num < 1) throw this.bad(at, 'a command with no arguments');
      this.argsLeft = num;
      this.argIndex = 0;
      this.name = '';
      this.expectArgument();
      return;
    }
    this.dataLeft = num;
    if (num === 0) {
      this.state = S_CRLF;
      this.crlfLeft = 2;
    } else {
      this.state = S_DATA;
    }
  }

  private expectArgument(): void {
    this.state = S_LINE;
    this.lineKind = L_ARGLEN;
    this.line = '';
  }

  private endArgument(at: number): void {
    this.argIndex++;
    if (--this.argsLeft > 0) {
      this.expectArgument();
      return;
    }
    this.state = S_START;
    this.commands++;
    const name = this.name.toUpperCase();
    if (name === 'MULTI') this.inMulti = true;
    else if (name === 'EXEC' || name === 'DISCARD') this.inMulti = false;
    if (!this.inMulti) this.safeEnd = at;
  }

  private bad(at: number, why: string): Error {
    return integrityError(
      `${this.where} is not a valid append-only file at byte ${at}: ${why}`,
      'run redis-check-aof on the file; if Redis itself loads it, report this to tykdr with --debug output',
    );
  }
}
