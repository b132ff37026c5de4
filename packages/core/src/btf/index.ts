/**
 * BTF support: parsing (parse.ts), compiled codecs (codec.ts) and the
 * TypeScript generator behind `bpfkit gen types` (gen.ts).
 */
export * from './parse.js'
export {
  codecForType,
  codecForVariable,
  decodeFn,
  encodeFn,
  primitives,
  cStringCodec,
  type BtfCodec,
  type DecodeFn,
  type EncodeFn,
} from './codec.js'
export type {
  CodecOptions,
  Node as LayoutNode,
  NumNode,
  BitsNode,
  StrNode,
  BytesNode,
  TypedArrayNode,
  ArrayNode,
  StructNode,
  Field as LayoutField,
  TypedArrayName,
} from './layout.js'
export { buildLayout } from './layout.js'
export { generateTypes, generateTypesFromBtf, pascalCase, type GenerateOptions } from './gen.js'
export { readElfBtf, isElf, type ElfBtf } from './elf.js'
