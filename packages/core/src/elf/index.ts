/**
 * ELF and process-introspection helpers for uprobes: open a binary, find a
 * symbol, turn it into the file offset the kernel wants, find shared
 * libraries like ld.so does, and read a process's mappings safely.
 */
export {
  openElf,
  ElfFile,
  type ElfType,
  type ElfMachine,
  type ElfSection,
  type ElfProgramHeader,
  EM_X86_64,
  EM_AARCH64,
  PT_LOAD,
  PT_DYNAMIC,
  PT_NOTE,
  PT_TLS,
  PF_X,
  PF_W,
  PF_R,
  SHT_NULL,
  SHT_SYMTAB,
  SHT_STRTAB,
  SHT_NOTE,
  SHT_NOBITS,
  SHT_DYNSYM,
  SHT_GNU_VERDEF,
  SHT_GNU_VERNEED,
  SHT_GNU_VERSYM,
} from './reader.js'
export {
  type ElfSymbol,
  type SymbolType,
  type SymbolBinding,
  type SymbolVisibility,
  SHN_UNDEF,
  SHN_ABS,
  SHN_COMMON,
  displayName,
} from './symbols.js'
export { symbolFileOffset, addressToFileOffset, segmentFor, type SymbolOffsetOptions } from './offset.js'
export { parseLdCache, readLdCache, resolveLibrary, type LdCacheEntry, type ResolveLibraryOptions } from './ldcache.js'
export {
  readProcMaps,
  parseProcMaps,
  parseMapsLine,
  mappedFiles,
  hostPathFor,
  validatePid,
  MAX_LINE_BYTES,
  MAX_LINES,
  type ProcMapping,
  type MappedFile,
} from './procmaps.js'
export { resolveInRoot } from './rootpath.js'
