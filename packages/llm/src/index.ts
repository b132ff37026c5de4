/**
 * @bpfkit/llm: recognise LLM API calls (OpenAI, Azure OpenAI, Anthropic,
 * Gemini, Bedrock, Ollama, Mistral, Cohere, OpenAI-compatible servers, MCP)
 * in the HTTP exchanges @bpfkit/core rebuilds from captured traffic, rebuild
 * prompts, completions, tool calls and usage, and run scanners over them.
 */
export * from './types.js'
export { LlmMonitor, type LlmMonitorOptions, type HttpEventSource } from './monitor.js'
export type { LlmMonitorStats } from './diagnostics.js'
export type { LlmWorkloadSummary } from './workload-summary.js'
export { isoToMs } from './latency.js'
export { DEFAULT_LIMITS, CompletionBuilder, type AssemblyLimits, type ParsedRequest, type ReportedUsage } from './assembly.js'
export {
  DEFAULT_RECOGNISERS,
  OPENAI_FORMAT_HOSTS,
  MCP_METHODS,
  azureOpenAI,
  openAIFormat,
  anthropic,
  gemini,
  bedrock,
  cohere,
  ollama,
  mcp,
  type Recogniser,
  type RecogniserInput,
} from './recognise.js'
export { WIRE_ADAPTERS, adapterFor, type ProviderMatch, type WireFormat, type WireAdapter, type ResponseContext } from './providers/index.js'
export { EXAMPLE_PRICES, PRICES_AS_OF, findPrice, costOf, type PriceTable, type ModelPrice } from './pricing.js'
export { estimateTokens, resolveUsage } from './usage.js'
export { EventStreamDecoder, type EventStreamMessage } from './eventstream.js'
export { redactExchange, maskFor } from './redact.js'
export { workloadOf } from './workload.js'
export * from './scanners/index.js'
