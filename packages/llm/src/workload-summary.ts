/**
 * Running totals per workload (see workload.ts for the key): usage, cost,
 * errors and findings, for summary(). The number of workloads, and of
 * models within one, is capped so a capture with endless distinct names
 * cannot grow memory without bound.
 */
import type { LlmExchangeEvent } from './types.js'

/** Usage and cost of one workload, from summary(). */
export interface LlmWorkloadSummary {
  workload: string
  exchanges: number
  /** exchanges with an HTTP status >= 400 or a provider error */
  errors: number
  findings: number
  input_tokens: number
  output_tokens: number
  /** exchanges whose token counts were (partly) estimated */
  estimated_exchanges: number
  /** USD, for the exchanges whose model had a price */
  cost_usd: number
  /** exchanges without a price (cost_usd leaves them out) */
  unpriced_exchanges: number
  providers: Record<string, number>
  models: Record<string, number>
  first_seen: string
  last_seen: string
}

/** Distinct models counted per workload; the others are counted as '(other)'. */
const MAX_MODELS = 100

export class WorkloadSummaries {
  private readonly workloads = new Map<string, LlmWorkloadSummary>()

  constructor(private readonly maxWorkloads: number) {}

  /** Adds an emitted exchange. False when it is a new workload and maxWorkloads is reached (the caller counts it). */
  add(ev: LlmExchangeEvent): boolean {
    let w = this.workloads.get(ev.workload)
    if (!w) {
      if (this.workloads.size >= this.maxWorkloads) return false
      w = {
        workload: ev.workload,
        exchanges: 0,
        errors: 0,
        findings: 0,
        input_tokens: 0,
        output_tokens: 0,
        estimated_exchanges: 0,
        cost_usd: 0,
        unpriced_exchanges: 0,
        providers: {},
        models: {},
        first_seen: ev.time,
        last_seen: ev.time,
      }
      this.workloads.set(ev.workload, w)
    }
    w.exchanges++
    if (ev.error) w.errors++
    w.findings += ev.findings
    w.input_tokens += ev.usage?.input_tokens ?? 0
    w.output_tokens += ev.usage?.output_tokens ?? 0
    if (ev.usage?.estimated) w.estimated_exchanges++
    if (ev.cost) w.cost_usd += ev.cost.total
    else if (ev.usage) w.unpriced_exchanges++
    w.providers[ev.provider] = (w.providers[ev.provider] ?? 0) + 1
    const model = ev.model ?? '(unknown)'
    if (model in w.models || Object.keys(w.models).length < MAX_MODELS) w.models[model] = (w.models[model] ?? 0) + 1
    else w.models['(other)'] = (w.models['(other)'] ?? 0) + 1
    if (ev.time < w.first_seen) w.first_seen = ev.time
    if (ev.time > w.last_seen) w.last_seen = ev.time
    return true
  }

  /** Copies, busiest first. */
  list(): LlmWorkloadSummary[] {
    return [...this.workloads.values()]
      .map((w) => ({ ...w, providers: { ...w.providers }, models: { ...w.models } }))
      .sort((a, b) => b.exchanges - a.exchanges || a.workload.localeCompare(b.workload))
  }
}
