/**
 * LLM usage per workload, tallied from the (possibly k8s-enriched) llm.exchange
 * events the agent printed, for the table shown on exit. Kept here rather
 * than taken from LlmMonitor.summary() because the agent enriches LLM events
 * after the monitor, so only it knows the Kubernetes workload of each call.
 */
import type { LlmExchangeEvent } from '@bpfkit/llm'

interface Row {
  calls: number
  errors: number
  findings: number
  input: number
  output: number
  estimated: number
  cost: number
  models: Set<string>
}

export class LlmSummary {
  readonly #rows = new Map<string, Row>()

  /** The row key: namespace/kind/name when enriched, else the monitor's own workload (executable or comm). */
  static workloadOf(ev: LlmExchangeEvent): string {
    const k = ev.k8s as { namespace?: { name?: string }; workload?: { kind: string; name: string }; pod?: { name?: string } } | undefined
    if (k?.workload) return `${k.namespace?.name ?? '?'}/${k.workload.kind.toLowerCase()}/${k.workload.name}`
    if (k?.pod?.name) return `${k.namespace?.name ?? '?'}/pod/${k.pod.name}`
    return ev.workload
  }

  add(ev: LlmExchangeEvent): void {
    const key = LlmSummary.workloadOf(ev)
    let r = this.#rows.get(key)
    if (!r) this.#rows.set(key, (r = { calls: 0, errors: 0, findings: 0, input: 0, output: 0, estimated: 0, cost: 0, models: new Set() }))
    r.calls++
    if (ev.error || (ev.http.status ?? 0) >= 400) r.errors++
    r.findings += ev.findings
    r.input += ev.usage?.input_tokens ?? 0
    r.output += ev.usage?.output_tokens ?? 0
    if (ev.usage?.estimated) r.estimated++
    r.cost += ev.cost?.total ?? 0
    if (ev.model) r.models.add(ev.model)
  }

  get size(): number {
    return this.#rows.size
  }

  /** A plain-text table, one row per workload, most expensive first. */
  table(): string {
    const rows = [...this.#rows].sort((a, b) => b[1].cost - a[1].cost || b[1].calls - a[1].calls)
    const lines = ['workload                                  calls  errors  findings  tokens in  tokens out  est.  cost USD   models']
    for (const [w, r] of rows) {
      lines.push(
        `${w.padEnd(40).slice(0, 40)}  ${String(r.calls).padStart(5)}  ${String(r.errors).padStart(6)}  ${String(r.findings).padStart(8)}  ${String(r.input).padStart(9)}  ${String(r.output).padStart(10)}  ${String(r.estimated).padStart(4)}  ${r.cost.toFixed(5).padStart(8)}   ${[...r.models].join(', ')}`,
      )
    }
    return lines.join('\n')
  }

  toJSON(): Record<string, unknown>[] {
    return [...this.#rows].map(([workload, r]) => ({ workload, calls: r.calls, errors: r.errors, findings: r.findings, input_tokens: r.input, output_tokens: r.output, estimated_calls: r.estimated, cost_usd: r.cost, models: [...r.models] }))
  }
}
