/**
 * Token usage: what the provider reported, with gaps filled by counting
 * tokens ourselves (gpt-tokenizer, o200k_base) and marked estimated. The
 * count is exact for recent OpenAI models and an approximation for other
 * model families (their tokenizers are not public or not in JS): good
 * enough to see which workload spends what, not to reconcile a bill.
 */
import { countTokens } from 'gpt-tokenizer'
import type { ReportedUsage } from './assembly.js'
import type { LlmMessage, LlmToolCall, LlmToolDefinition, LlmUsage } from './types.js'

/** Longest text we tokenize; beyond, tokens are extrapolated from the characters (tokenizing is ~O(n) but not free). */
const MAX_TOKENIZE_CHARS = 256 * 1024

export function estimateTokens(text: string): number {
  if (text.length === 0) return 0
  if (text.length <= MAX_TOKENIZE_CHARS) return countTokens(text)
  const sample = countTokens(text.slice(0, MAX_TOKENIZE_CHARS))
  return Math.round((sample * text.length) / MAX_TOKENIZE_CHARS)
}

function requestText(messages: LlmMessage[], tools: LlmToolDefinition[] | undefined): string {
  const parts: string[] = []
  for (const m of messages) {
    parts.push(m.content)
    for (const p of m.parts ?? []) if (p.type === 'tool_use') parts.push(p.name, p.arguments)
  }
  for (const t of tools ?? []) parts.push(t.name, t.description ?? '', t.parameters === undefined ? '' : JSON.stringify(t.parameters))
  return parts.join('\n')
}

/**
 * The usage for an event. Reported counts are kept as they are; a missing
 * input or output count is estimated (and `estimated` set). Returns
 * undefined when nothing was reported and estimation is off.
 */
export function resolveUsage(
  reported: ReportedUsage,
  request: { messages: LlmMessage[]; tools?: LlmToolDefinition[] },
  completion: { text: string; tool_calls: LlmToolCall[] },
  estimate: boolean,
): LlmUsage | undefined {
  const u: LlmUsage = { estimated: false }
  let any = false
  for (const k of ['input_tokens', 'output_tokens', 'total_tokens', 'cache_read_tokens', 'reasoning_tokens'] as const) {
    if (reported[k] !== undefined) {
      u[k] = reported[k]
      any = true
    }
  }
  if (!estimate) return any ? u : undefined
  if (u.input_tokens === undefined) {
    u.input_tokens = estimateTokens(requestText(request.messages, request.tools))
    u.estimated = true
  }
  if (u.output_tokens === undefined) {
    u.output_tokens = estimateTokens([completion.text, ...completion.tool_calls.flatMap((c) => [c.name, c.arguments])].join('\n'))
    u.estimated = true
  }
  // a reported total is kept; an estimate gets the sum
  if (u.estimated) u.total_tokens = u.input_tokens + u.output_tokens
  return u
}
