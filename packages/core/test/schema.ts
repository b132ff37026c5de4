// Validates events against docs/schema/events.schema.json (the documented schema).
import Ajv from 'ajv'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './helpers.js'

const schema = JSON.parse(readFileSync(join(repoRoot, 'docs', 'schema', 'events.schema.json'), 'utf8'))
const ajv = new (Ajv as unknown as typeof Ajv.default)({ allErrors: true })
const validate = ajv.compile(schema)

/** Throws with every schema violation of `event` (after a JSON round trip, as consumers see it). */
export function assertValidEvent(event: unknown): void {
  const plain = JSON.parse(JSON.stringify(event))
  if (!validate(plain)) {
    throw new Error(`event does not match events.schema.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(plain)}`)
  }
}
