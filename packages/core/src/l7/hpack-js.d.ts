/** The parts of hpack.js (no published types) that l7/hpack.ts uses. */
declare module 'hpack.js' {
  interface HpackPrimitiveDecoder {
    push(chunk: Buffer): void
    isEmpty(): boolean
    decodeBit(): number
    decodeInt(): number
    /** raw octets (Buffer) or Huffman-decoded octets (number[]) */
    decodeStr(): Buffer | number[]
  }
  interface HpackStaticEntry {
    name: string
    value: string
    nameSize: number
    totalSize: number
  }
  const hpack: {
    decoder: { create(): HpackPrimitiveDecoder }
    'static-table': { table: HpackStaticEntry[] }
  }
  export = hpack
}
