/**
 * Accuracy of the built-in scanners on the labelled evaluation set in
 * packages/llm/eval. Prints precision, recall, F1 and FPR per scanner for the
 * dev split (the scanners were tuned on it) and the held-out split (never
 * tuned on), plus the injection false-positive rate on benign prompts and
 * per-family recall. Last line: JSON with all figures.
 *
 *   cd bench && pnpm exec tsx llm/accuracy.ts
 */
import { loadEval } from '../../packages/llm/eval/dataset.js'
import { evaluate, hiddenUnicodeRecall, type Metrics } from '../../packages/llm/eval/metrics.js'
import { PromptInjectionScanner, assessInjection } from '../../packages/llm/src/scanners/index.js'

const pct = (x: number) => `${(x * 100).toFixed(1)}%`
const results: Metrics[] = []
console.log('scanner            split    rows  P       R       F1      FPR    kind-ok')
for (const task of ['injection', 'secrets', 'pii'] as const) {
  for (const split of ['dev', 'heldout'] as const) {
    const m = evaluate(task, split)
    results.push(m)
    const rows = m.tp + m.fp + m.fn + m.tn
    const kind = m.kindCorrect === undefined ? '' : `${m.kindCorrect}/${m.tp + m.fn}`
    console.log(`${task.padEnd(18)} ${split.padEnd(8)} ${String(rows).padStart(4)}  ${m.precision.toFixed(3)}   ${m.recall.toFixed(3)}   ${m.f1.toFixed(3)}   ${pct(m.fpr).padStart(5)}  ${kind}`)
  }
}

// per-family recall of the injection scanner (which attack styles are missed)
const scanner = new PromptInjectionScanner()
const family: Record<string, { n: number; found: number }> = {}
for (const row of loadEval('injection')) {
  if (row.label !== 1) continue
  const key = `${row.split}/${row.variant ? `obfuscated:${row.variant}` : row.family}`
  const f = (family[key] ??= { n: 0, found: 0 })
  f.n++
  if ((scanner.scanRequest({ exchange_id: row.id, provider: 'eval', messages: [{ role: row.role ?? 'user', content: row.text }] }) as unknown[]).length) f.found++
}
console.log('\ninjection recall by family (split/family: found/total)')
for (const [k, v] of Object.entries(family).sort()) console.log(`  ${k.padEnd(34)} ${v.found}/${v.n}`)

// recall / FPR of the injection scores at other thresholds (reported, not used to choose the default 0.5)
const sweep: Array<{ split: string; threshold: number; recall: number; fpr: number }> = []
console.log('\ninjection threshold sweep (default 0.5)')
for (const split of ['dev', 'heldout'] as const) {
  const rows = loadEval('injection').filter((r) => r.split === split)
  const scored = rows.map((r) => ({ label: r.label, score: assessInjection(r.text, r.role === 'tool').score }))
  const pos = scored.filter((r) => r.label === 1)
  const neg = scored.filter((r) => r.label === 0)
  const line: string[] = []
  for (const t of [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) {
    const recall = pos.filter((r) => r.score >= t).length / pos.length
    const fpr = neg.filter((r) => r.score >= t).length / neg.length
    sweep.push({ split, threshold: t, recall, fpr })
    line.push(`t=${t}: R ${recall.toFixed(3)} FPR ${pct(fpr)}`)
  }
  console.log(`  ${split.padEnd(8)} ${line.join(' | ')}`)
}

const hu = { dev: hiddenUnicodeRecall('dev'), heldout: hiddenUnicodeRecall('heldout') }
console.log(`\nhidden_unicode: zero-width/tag rows found dev ${hu.dev.found}/${hu.dev.total}, heldout ${hu.heldout.found}/${hu.heldout.total}; benign prompts flagged ${hu.dev.benignHits + hu.heldout.benignHits}/${hu.dev.benign + hu.heldout.benign}`)

for (const m of results) {
  if (m.misses.length) console.log(`misses ${m.task}/${m.split}: ${m.misses.join(', ')}`)
  if (m.falseAlarms.length) console.log(`false alarms ${m.task}/${m.split}: ${m.falseAlarms.join('; ')}`)
}
console.log(JSON.stringify({
  bench: 'llm-accuracy',
  results: results.map(({ misses: _m, falseAlarms: _f, ...r }) => r),
  injectionFamilies: family,
  injectionThresholdSweep: sweep,
  hiddenUnicode: hu,
}))
