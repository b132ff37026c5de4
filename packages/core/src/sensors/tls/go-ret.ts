/**
 * Return instructions of a Go function, for "return probes" that are plain
 * uprobes on each RET: Go moves goroutine stacks, so a uretprobe (which
 * rewrites the return address on the stack) crashes Go programs
 * (golang/go#22008). Every anchor (ecapture, Pixie, OBI, DeepFlow, Coroot)
 * does the same: decode the function and probe each RET.
 *
 * x86-64 code is decoded with iced-x86 (a maintained decoder, loaded lazily:
 * it is WebAssembly and costs ~20 ms to instantiate), so a 0xC3 byte inside
 * another instruction's immediate or displacement is never mistaken for a
 * RET. AArch64 instructions are fixed 4-byte words: RET is 0xd65f0000 with
 * the register in bits 5..9.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { createRequire } from 'node:module'
import { ElfError, InvalidArgumentError } from '../../errors.js'
import { addressToFileOffset, type ElfFile } from '../../elf/index.js'

/** Functions larger than this are refused (Go's crypto/tls methods are a few KiB). */
export const MAX_FUNCTION_BYTES = 1 << 20

export interface GoFunctionRange {
  /** virtual address of the first instruction */
  address: number
  /** size in bytes (from the symbol table or .gopclntab) */
  size: number
}

export interface ReturnSites {
  /** virtual addresses of the RET instructions */
  addresses: number[]
  /** the same points as file offsets (what the kernel's uprobe API takes) */
  fileOffsets: number[]
}

type Iced = typeof import('iced-x86')
let iced: Iced | undefined

function loadIced(): Iced {
  if (!iced) iced = createRequire(import.meta.url)('iced-x86') as Iced
  return iced
}

/** Instantiates the decoder now (it is otherwise loaded on first use, which costs ~20 ms). */
export function preloadDecoder(): void {
  loadIced()
}

/** Offsets (relative to the start of `code`) of every near RET in x86-64 machine code. */
export function x86ReturnOffsets(code: Uint8Array, address = 0): number[] {
  const { Decoder, DecoderOptions, Instruction, Code } = loadIced()
  const decoder = new Decoder(64, code, DecoderOptions.None)
  const instr = new Instruction()
  const out: number[] = []
  try {
    decoder.ip = BigInt(address)
    const base = BigInt(address)
    while (decoder.canDecode) {
      decoder.decodeOut(instr)
      const c = instr.code
      if (c === Code.Retnq || c === Code.Retnq_imm16) out.push(Number(instr.ip - base))
    }
  } finally {
    instr.free()
    decoder.free()
  }
  return out
}

/** Offsets of every RET (any register) in AArch64 machine code. */
export function arm64ReturnOffsets(code: Uint8Array): number[] {
  const out: number[] = []
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength)
  for (let i = 0; i + 4 <= code.length; i += 4) {
    if ((view.getUint32(i, true) & 0xfffffc1f) >>> 0 === 0xd65f0000) out.push(i)
  }
  return out
}

/**
 * RET sites of the function at `fn` in the ELF file at `path` (opened as
 * `elf`). Throws ElfError if the function's bytes are not in the file or it
 * has no RET (a Go function always has at least one).
 */
export function findReturnSites(elf: ElfFile, path: string, fn: GoFunctionRange): ReturnSites {
  if (!Number.isSafeInteger(fn.address) || fn.address <= 0) throw new InvalidArgumentError(`invalid function address ${fn.address}`)
  if (!Number.isSafeInteger(fn.size) || fn.size <= 0 || fn.size > MAX_FUNCTION_BYTES) {
    throw new InvalidArgumentError(`invalid function size ${fn.size} at 0x${fn.address.toString(16)}`)
  }
  const start = addressToFileOffset(elf, fn.address)
  // the whole function must be file-backed in the same segment
  if (addressToFileOffset(elf, fn.address + fn.size - 1) !== start + fn.size - 1) {
    throw new ElfError(`${path}: function at 0x${fn.address.toString(16)} spans segments`)
  }
  const code = readAt(path, start, fn.size)
  const rel = elf.machine === 'x86_64' ? x86ReturnOffsets(code, fn.address) : arm64ReturnOffsets(code)
  if (rel.length === 0) throw new ElfError(`${path}: no RET instruction in the function at 0x${fn.address.toString(16)}`)
  return { addresses: rel.map((r) => fn.address + r), fileOffsets: rel.map((r) => start + r) }
}

function readAt(path: string, offset: number, size: number): Uint8Array {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(size)
    let got = 0
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, offset + got)
      if (n === 0) break
      got += n
    }
    if (got !== size) throw new ElfError(`${path}: short read (${got} of ${size} bytes at offset ${offset})`)
    return buf
  } finally {
    closeSync(fd)
  }
}
