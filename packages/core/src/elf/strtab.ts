/**
 * ELF string tables (.strtab, .dynstr, .shstrtab): NUL-terminated names
 * addressed by byte offset.
 *
 * Hostile tables must not make lookups slow: every name is bounded (MAX_NAME
 * bytes), and the bytes decoded per pass (one symbol table, one lookup) are
 * capped at a small multiple of the table size. So a corrupt file whose
 * millions of symbols all point at one long name costs linear time and then
 * fails with ElfError.
 */
import { ElfError } from '../errors.js'

/** Longest name accepted. Real C++ mangled names stay far below this. */
export const MAX_NAME = 64 * 1024

export class StringTable {
  private budget = 0

  /** `label` names the table in messages, e.g. "/usr/bin/node .dynstr" */
  constructor(
    readonly bytes: Buffer,
    readonly label: string,
  ) {
    this.resetBudget()
  }

  get size(): number {
    return this.bytes.length
  }

  /**
   * Start a new pass over the table (decoding a symbol table, one lookup):
   * each pass may decode at most 8× the table size (+1 MiB) in total, far
   * more than any real table needs and little enough to stay linear.
   */
  resetBudget(): void {
    this.budget = 8 * this.bytes.length + 1024 * 1024
  }

  /** the name at `offset`; `what` describes the referrer for error messages */
  get(offset: number, what: string): string {
    const buf = this.bytes
    if (offset === 0 && buf.length === 0) return ''
    if (offset >= buf.length) {
      throw new ElfError(`${this.label}: ${what} has name offset ${offset}, outside the string table (${buf.length} bytes)`)
    }
    // memchr to the next NUL: a scan past MAX_NAME fails at once, so every
    // successful scan is short and charged to the budget
    const end = buf.indexOf(0, offset)
    if (end < 0) throw new ElfError(`${this.label}: ${what} has a name at offset ${offset} that is not NUL-terminated`)
    const len = end - offset
    if (len > MAX_NAME) throw new ElfError(`${this.label}: ${what} has a name at offset ${offset} longer than ${MAX_NAME} bytes`)
    this.budget -= len + 1
    if (this.budget < 0) {
      throw new ElfError(`${this.label}: names overlap far more than any linker produces; the string table is corrupt`)
    }
    return len === 0 ? '' : buf.toString('utf8', offset, end)
  }

  /**
   * True if the name at `offset` is exactly `name`, or `name` followed by '@'
   * (a versioned name like `foo@@V1` written literally in .symtab). Compares
   * bytes in place, so scanning a table for one name allocates nothing.
   */
  matches(offset: number, name: Buffer): boolean {
    const buf = this.bytes
    const n = name.length
    if (offset + n >= buf.length) return false
    if (buf[offset] !== name[0]) return false
    const next = buf[offset + n]
    if (next !== 0 && next !== 0x40) return false
    return buf.compare(name, 0, n, offset, offset + n) === 0
  }
}
