/**
 * Small readers of the HTTP messages @bpfkit/core rebuilds: a header by
 * name and the host/port of an authority. Captured headers keep the case
 * they were sent in, so lookups compare lowercase.
 */
import type { l7 } from '@bpfkit/core'

/** The first value of a header; `name` must be lowercase. */
export function header(headers: l7.HttpHeaders | undefined, name: string): string | undefined {
  if (!Array.isArray(headers)) return undefined
  for (const h of headers) if (Array.isArray(h) && typeof h[0] === 'string' && h[0].toLowerCase() === name && typeof h[1] === 'string') return h[1]
  return undefined
}

/** Why `headers` is not a list of [name, value] string pairs (hostile or hand-made events), or undefined. */
export function headersProblem(headers: unknown): string | undefined {
  if (headers === undefined) return undefined
  if (!Array.isArray(headers)) return `headers are ${headers === null ? 'null' : typeof headers}, not a list`
  if (headers.some((h) => !Array.isArray(h) || typeof h[0] !== 'string' || typeof h[1] !== 'string')) return 'headers hold entries that are not [name, value] strings'
  return undefined
}

/** Splits "host:port" / "[v6]:port". */
export function splitAuthority(authority: string | undefined): { host: string; port?: number } {
  if (!authority) return { host: '' }
  const a = authority.trim().toLowerCase()
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(a)
  if (!m) return { host: a }
  const port = m[2] !== undefined ? Number(m[2]) : undefined
  return port !== undefined && port <= 65535 ? { host: m[1]!, port } : { host: m[1]! }
}
