/**
 * One readable line (or two) per event for the terminal. The agent prints
 * JSON instead with --json; this module only decides what a person sees.
 */
import type { ProcessEvent, l7 } from '@bpfkit/core'
import type { LlmExchangeEvent, LlmFindingEvent } from '@bpfkit/llm'

export interface Style {
  color: boolean
}

/** Any event that may carry Kubernetes identity from @bpfkit/k8s. */
type MaybeK8s = { k8s?: Record<string, any>; container?: Record<string, any>; peer?: { kind: string; ip: string; k8s?: Record<string, any> } }

export class Formatter {
  constructor(private readonly style: Style) {}

  paint(code: number, s: string): string {
    return this.style.color ? `\x1b[${code}m${s}\x1b[0m` : s
  }

  /** "ns/deployment/name pod=…" when the event was enriched, else ''. */
  workload(ev: MaybeK8s): string {
    const k = ev.k8s
    if (!k) return ''
    const state = k.identity?.state as string | undefined
    if (!k.pod?.name) return state && state !== 'host' ? this.paint(35, ` [k8s ${state}]`) : ''
    const w = k.workload ? `${k.workload.kind.toLowerCase()}/${k.workload.name}` : `pod/${k.pod.name}`
    return this.paint(35, ` [${k.namespace?.name ?? '?'}/${w} pod=${k.pod.name}${state && state !== 'complete' ? ` ${state}` : ''}]`)
  }

  /** " (service ns/name)" or " (pod ns/name)" for the other end of an enriched connection. */
  peer(ev: MaybeK8s): string {
    const p = ev.peer
    if (!p || p.kind === 'external') return ''
    const name = p.kind === 'service' ? p.k8s?.service?.name : p.k8s?.pod?.name
    return this.paint(35, ` (${p.kind} ${p.k8s?.namespace?.name ?? '?'}/${name ?? '?'})`)
  }

  process(ev: ProcessEvent & MaybeK8s): string {
    const p = ev.process
    const time = this.paint(90, ev.time.slice(11, 23))
    const who = `${this.paint(1, p.executable.name || p.command)}[${p.pid}] uid=${p.user.id}${this.workload(ev)}`
    const chain = (ev.ancestors ?? []).map((a) => `${a.executable.path.split('/').pop() || a.command || '?'}[${a.pid}]`).join(' ← ')
    switch (ev.type) {
      case 'process.exec': {
        const args = p.command_args.slice(1).join(' ')
        return `${time} ${this.paint(32, 'exec')} ${who} ${p.executable.path} ${args}${p.args_truncated ? ' …' : ''}\n             ${this.paint(90, `↳ ${chain}`)}`
      }
      case 'process.fork':
        return `${time} ${this.paint(36, 'fork')} ${who} → child ${ev.child.pid}`
      case 'process.exit': {
        const how = ev.exit.signal ? this.paint(31, `killed by signal ${ev.exit.signal}`) : `exit ${ev.exit.code}`
        return `${time} ${this.paint(33, 'exit')} ${who} ${how} after ${(Number(ev.exit.duration_ns) / 1e6).toFixed(1)} ms`
      }
    }
  }

  http(ev: l7.HttpExchangeEvent & MaybeK8s): string {
    const time = this.paint(90, ev.time.slice(11, 23))
    const status = ev.status === undefined ? '-' : String(ev.status)
    const size = ev.response?.body ? ` ${ev.response.body.size} B` : ''
    const ms = ev.timings.duration_ns !== undefined ? ` ${(ev.timings.duration_ns / 1e6).toFixed(1)} ms` : ''
    const flags = `${ev.gap ? ' gap' : ''}${ev.incomplete ? ' incomplete' : ''}`
    const url = `${ev.scheme}://${ev.authority ?? '?'}${ev.path ?? ''}${this.peer(ev)}`
    return `${time} ${this.paint(34, 'http')} ${this.paint(1, ev.process.comm)}[${ev.process.pid}]${this.workload(ev)} HTTP/${ev.protocol} ${ev.method ?? '?'} ${url} → ${this.paint(ev.status && ev.status >= 400 ? 31 : 32, status)}${size}${ms}${flags}`
  }

  llm(ev: LlmExchangeEvent & MaybeK8s): string {
    const time = this.paint(90, ev.time.slice(11, 23))
    const u = ev.usage
    const tokens = u ? ` ${u.input_tokens ?? '?'}→${u.output_tokens ?? '?'} tok${u.estimated ? ' (est.)' : ''}` : ''
    const cost = ev.cost ? ` $${ev.cost.total.toFixed(5)}` : ''
    const lastUser = [...ev.messages].reverse().find((m) => m.role === 'user')
    const prompt = lastUser ? ` "${clip(lastUser.content, 60)}"` : ''
    const answer = ev.completion.text ? ` → "${clip(ev.completion.text, 60)}"` : ''
    const tools = ev.completion.tool_calls?.length ? ` tools: ${ev.completion.tool_calls.map((t) => t.name).join(', ')}` : ''
    const err = ev.error ? this.paint(31, ` error ${ev.error.message ?? ev.error.type ?? ''}`) : ''
    return `${time} ${this.paint(95, 'llm ')} ${this.paint(1, ev.process.comm)}[${ev.process.pid}]${this.workload(ev)} ${ev.provider} ${ev.operation} ${ev.model ?? '?'}${ev.stream ? ' (stream)' : ''}${tokens}${cost}${prompt}${answer}${tools}${err}`
  }

  finding(ev: LlmFindingEvent & MaybeK8s): string {
    const f = ev.finding
    const sev = this.paint(f.severity === 'critical' || f.severity === 'high' ? 31 : 33, f.severity.toUpperCase())
    return `${this.paint(90, ev.time.slice(11, 23))} ${this.paint(31, '!!! ')} ${sev} ${f.scanner}/${f.kind} score=${f.score.toFixed(2)} in ${f.location.part}${f.location.message_index !== undefined ? ` message ${f.location.message_index}` : ''} of ${ev.provider} call by ${ev.process.comm}[${ev.process.pid}]${this.workload(ev)}: ${f.snippet}`
  }
}

function clip(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim()
  return one.length > n ? `${one.slice(0, n - 1)}…` : one
}
