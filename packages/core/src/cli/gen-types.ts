/** `bpfkit gen types <object.bpf.o>`: TypeScript types and codecs from an object's BTF (like bpf2go). */
import { writeFileSync } from 'node:fs'
import { generateTypes } from '../btf/index.js'
import { CollectionSpec } from '../spec.js'
import { parse, UsageError, type Command } from './command.js'

export const genTypesCommand: Command = {
  name: 'gen types',
  summary: 'write TypeScript types and codecs for the structs in an object\'s BTF',
  help: `usage: bpfkit gen types <object.bpf.o> [--type NAME ...] [--out FILE]

Reads the object's BTF and prints TypeScript interfaces plus Codec objects
(import { Codec } from '@bpfkit/core') for its structs, unions and enums.

  --type NAME   only this type (and what it uses); repeatable
  --all         every named struct, union and enum in the BTF (default: the types of
                maps, global variables and BPFKIT_EXPORT_TYPE pointers)
  --out FILE    write to FILE instead of stdout`,
  run(args) {
    const { values, positionals } = parse(args, {
      type: { type: 'string', multiple: true },
      out: { type: 'string' },
      all: { type: 'boolean' },
    })
    if (positionals.length !== 1) throw new UsageError('gen types needs exactly one object file')
    const spec = CollectionSpec.fromFile(positionals[0]!)
    if (!spec.btf) throw new UsageError(`${positionals[0]} has no BTF (compile with clang -g)`)
    const source = generateTypes(spec.btf, values.type ? { types: values.type } : { all: !!values.all })
    if (values.out) writeFileSync(values.out, source)
    else process.stdout.write(source)
    return 0
  },
}
