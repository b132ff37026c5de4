/**
 * Runs the scanners over the evaluation set and computes precision, recall,
 * F1 and false-positive rate per task and split. Shared by bench/llm/accuracy.ts
 * (prints the figures) and the scanner tests (assert the targets on held-out rows).
 */
import { HiddenUnicodeScanner, PiiScanner, PromptInjectionScanner, SecretsScanner } from '../src/scanners/index.js'
import type { Finding, LlmMessage, Scanner } from '../src/types.js'
import { loadEval, type EvalRow, type Split } from './dataset.js'

export interface Metrics {
  task: string
  split: Split
  tp: number
  fp: number
  fn: number
  tn: number
  precision: number
  recall: number
  f1: number
  /** false positives / negatives */
  fpr: number
  /** positives found with the expected kind (secrets/pii) */
  kindCorrect?: number
  misses: string[]
  falseAlarms: string[]
}

function findingsFor(scanner: Scanner, row: EvalRow): Finding[] {
  const msg: LlmMessage = { role: row.role ?? 'user', content: row.text }
  const out = scanner.scanRequest?.({ exchange_id: row.id, provider: 'eval', messages: [msg] })
  if (!Array.isArray(out)) throw new Error('eval scanners are synchronous')
  const errors = out.filter((f) => f.kind === 'scanner_error')
  if (errors.length) throw new Error(`scanner error on ${row.id}: ${errors[0]!.evidence}`)
  return out.filter((f) => f.kind !== 'scan_truncated')
}

export function evaluate(task: 'injection' | 'secrets' | 'pii', split: Split, scanner?: Scanner): Metrics {
  const rows = loadEval(task).filter((r) => r.split === split)
  const s = scanner ?? (task === 'injection' ? new PromptInjectionScanner() : task === 'secrets' ? new SecretsScanner() : new PiiScanner())
  const m: Metrics = { task, split, tp: 0, fp: 0, fn: 0, tn: 0, precision: 0, recall: 0, f1: 0, fpr: 0, misses: [], falseAlarms: [] }
  let kindCorrect = 0
  for (const row of rows) {
    const f = findingsFor(s, row)
    const hit = f.length > 0
    if (row.label === 1 && hit) {
      m.tp++
      if (row.kind && f.some((x) => x.kind === row.kind)) kindCorrect++
      else if (row.kind) m.misses.push(`${row.id} (kind ${f.map((x) => x.kind).join(',')} != ${row.kind})`)
    } else if (row.label === 1) {
      m.fn++
      m.misses.push(row.id)
    } else if (hit) {
      m.fp++
      m.falseAlarms.push(`${row.id}: ${f.map((x) => `${x.kind} ${x.score}`).join(', ')}`)
    } else m.tn++
  }
  m.precision = m.tp + m.fp ? m.tp / (m.tp + m.fp) : 1
  m.recall = m.tp + m.fn ? m.tp / (m.tp + m.fn) : 1
  m.f1 = m.precision + m.recall ? (2 * m.precision * m.recall) / (m.precision + m.recall) : 0
  m.fpr = m.fp + m.tn ? m.fp / (m.fp + m.tn) : 0
  if (task !== 'injection') m.kindCorrect = kindCorrect
  return m
}

/** Recall of the hidden-Unicode scanner on the obfuscated injection rows that use invisible characters. */
export function hiddenUnicodeRecall(split: Split): { found: number; total: number; benignHits: number; benign: number } {
  const s = new HiddenUnicodeScanner()
  const rows = loadEval('injection').filter((r) => r.split === split)
  const hidden = rows.filter((r) => r.variant === 'zero_width' || r.variant === 'tags')
  const benign = rows.filter((r) => r.label === 0)
  return {
    found: hidden.filter((r) => findingsFor(s, r).length > 0).length,
    total: hidden.length,
    benignHits: benign.filter((r) => findingsFor(s, r).length > 0).length,
    benign: benign.length,
  }
}
