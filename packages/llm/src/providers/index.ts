/** The built-in wire formats by name. */
import type { WireAdapter, WireFormat } from './adapter.js'
import { anthropicMessagesAdapter } from './anthropic.js'
import { bedrockConverseAdapter, bedrockInvokeAdapter } from './bedrock.js'
import { cohereChatAdapter } from './cohere.js'
import { geminiAdapter } from './gemini.js'
import { mcpAdapter } from './mcp.js'
import { ollamaChatAdapter, ollamaGenerateAdapter } from './ollama.js'
import { openaiChat, openaiCompletions, openaiEmbeddings, openaiResponses } from './openai.js'

export const WIRE_ADAPTERS: Record<WireFormat, WireAdapter> = {
  openai_chat: openaiChat,
  openai_completions: openaiCompletions,
  openai_embeddings: openaiEmbeddings,
  openai_responses: openaiResponses,
  anthropic_messages: anthropicMessagesAdapter,
  gemini: geminiAdapter,
  bedrock_converse: bedrockConverseAdapter,
  bedrock_invoke: bedrockInvokeAdapter,
  ollama_chat: ollamaChatAdapter,
  ollama_generate: ollamaGenerateAdapter,
  cohere_chat: cohereChatAdapter,
  mcp: mcpAdapter,
}

export function adapterFor(format: WireFormat | WireAdapter): WireAdapter | undefined {
  return typeof format === 'string' ? WIRE_ADAPTERS[format] : format
}

export * from './adapter.js'
