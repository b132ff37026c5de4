/**
 * ELF note parsing, for the GNU build ID: the linker-generated hash that
 * identifies one exact build of a binary (what debuginfod and symbol servers
 * key on), so a probe can tell whether it is looking at the binary it expects.
 */

export const NT_GNU_BUILD_ID = 3
/** Build IDs are 16 (md5/uuid) or 20 (sha1) bytes; cap anything sillier. */
const MAX_BUILD_ID = 64
/** Notes walked per section; real sections have a handful. */
const MAX_NOTES = 4096

/**
 * Find the NT_GNU_BUILD_ID note (owner "GNU") in a note section or PT_NOTE
 * segment. Returns lowercase hex, or undefined if absent or malformed (a
 * build ID is informational: a bad note must not make the file unusable).
 */
export function findBuildId(notes: Buffer, align: number): string | undefined {
  const a = align === 8 ? 8 : 4
  const pad = (n: number) => (n + a - 1) & ~(a - 1)
  let off = 0
  for (let i = 0; i < MAX_NOTES && off + 12 <= notes.length; i++) {
    const namesz = notes.readUInt32LE(off)
    const descsz = notes.readUInt32LE(off + 4)
    const type = notes.readUInt32LE(off + 8)
    const nameOff = off + 12
    if (namesz > notes.length - nameOff) return undefined
    const descOff = nameOff + pad(namesz)
    if (descOff > notes.length || descsz > notes.length - descOff) return undefined
    if (type === NT_GNU_BUILD_ID && namesz === 4 && notes.toString('latin1', nameOff, nameOff + 4) === 'GNU\0') {
      if (descsz === 0 || descsz > MAX_BUILD_ID) return undefined
      return notes.toString('hex', descOff, descOff + descsz)
    }
    off = descOff + pad(descsz)
  }
  return undefined
}
