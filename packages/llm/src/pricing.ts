/**
 * Cost estimates from a price table: USD per million input and output
 * tokens, matched by the longest model-name prefix.
 *
 * THE SHIPPED PRICES ARE EXAMPLES, copied from the providers' public price
 * pages on PRICES_AS_OF. Prices change, differ by region, tier, batch and
 * cache discounts; pass your own table (`prices` option) for real figures.
 */
import type { LlmCost, LlmUsage } from './types.js'

export interface ModelPrice {
  /** USD per 1M input tokens */
  input: number
  /** USD per 1M output tokens */
  output: number
}

/** model-name prefix → price */
export type PriceTable = Record<string, ModelPrice>

/** When the example prices were taken. */
export const PRICES_AS_OF = '2025-08-01'

/** Example list prices (standard tier, no caching discounts) on PRICES_AS_OF. May be outdated. */
export const EXAMPLE_PRICES: PriceTable = {
  // OpenAI
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'o1': { input: 15, output: 60 },
  'o3': { input: 2, output: 8 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  // Anthropic
  'claude-opus-4': { input: 15, output: 75 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-3-haiku': { input: 0.25, output: 1.25 },
  // Google
  'gemini-2.5-pro': { input: 1.25, output: 10 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4 },
  // Mistral
  'mistral-large': { input: 2, output: 6 },
  'mistral-medium': { input: 0.4, output: 2 },
  'mistral-small': { input: 0.1, output: 0.3 },
  // Cohere
  'command-a': { input: 2.5, output: 10 },
  'command-r-plus': { input: 2.5, output: 10 },
  'command-r': { input: 0.15, output: 0.6 },
  // Amazon
  'amazon.nova-pro': { input: 0.8, output: 3.2 },
  'amazon.nova-lite': { input: 0.06, output: 0.24 },
  'amazon.nova-micro': { input: 0.035, output: 0.14 },
}

/**
 * The name to look up: lowercase, without routing prefixes that do not
 * change the model (Bedrock region/vendor prefixes such as "us.anthropic.",
 * Gemini's "models/", OpenRouter's "vendor/").
 */
export function priceKeyCandidates(model: string): string[] {
  const m = model.toLowerCase()
  const out = [m]
  const noRegion = m.replace(/^(?:us|eu|apac|global|us-gov)\./, '')
  out.push(noRegion)
  const noVendor = noRegion.replace(/^(?:anthropic|meta|mistral|cohere|ai21|amazon)\.(?!nova)/, '')
  out.push(noVendor)
  if (m.startsWith('models/')) out.push(m.slice(7))
  const slash = m.lastIndexOf('/')
  if (slash >= 0) out.push(m.slice(slash + 1))
  return [...new Set(out)]
}

/** Longest prefix of `model` in the table, or undefined. */
export function findPrice(table: PriceTable, model: string): { key: string; price: ModelPrice } | undefined {
  let best: { key: string; price: ModelPrice } | undefined
  for (const cand of priceKeyCandidates(model)) {
    for (const [key, price] of Object.entries(table)) {
      if (cand.startsWith(key.toLowerCase()) && (!best || key.length > best.key.length)) best = { key, price }
    }
  }
  return best
}

export function costOf(table: PriceTable, model: string | undefined, usage: LlmUsage | undefined): LlmCost | undefined {
  if (!model || !usage || usage.input_tokens === undefined || usage.output_tokens === undefined) return undefined
  const p = findPrice(table, model)
  if (!p) return undefined
  const input = (usage.input_tokens * p.price.input) / 1e6
  const output = (usage.output_tokens * p.price.output) / 1e6
  return { input, output, total: input + output, currency: 'USD', price_key: p.key, estimated: usage.estimated }
}
