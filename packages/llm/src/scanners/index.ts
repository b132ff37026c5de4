/**
 * The built-in scanners. Each is a small class implementing `Scanner`
 * (../types.ts); `defaultScanners()` returns one of each with default
 * options. Add your own (including async remote/ML classifiers) next to them.
 */
import type { Scanner } from '../types.js'
import { ExfiltrationScanner, type ExfiltrationOptions } from './exfiltration.js'
import { HiddenUnicodeScanner, type HiddenUnicodeOptions } from './hidden-unicode.js'
import { PiiScanner, type PiiOptions } from './pii.js'
import { PolicyScanner, type PolicyOptions } from './policy.js'
import { PromptInjectionScanner, type PromptInjectionOptions } from './prompt-injection.js'
import { PromptLeakScanner, type PromptLeakOptions } from './prompt-leak.js'
import { SecretsScanner, type SecretsOptions } from './secrets.js'

export { ExfiltrationScanner, detectExfiltration, type ExfiltrationOptions } from './exfiltration.js'
export { HiddenUnicodeScanner, decodeTagChars, detectHiddenUnicode, type HiddenUnicodeOptions } from './hidden-unicode.js'
export { PiiScanner, cardBrand, detectPii, ibanValid, luhnValid, ssnValid, type PiiKind, type PiiOptions } from './pii.js'
export { PolicyScanner, type BannedTopic, type PolicyOptions, type TokenBudget } from './policy.js'
export { PromptInjectionScanner, assessInjection, type InjectionAssessment, type InjectionSignalHit, type PromptInjectionOptions } from './prompt-injection.js'
export { INJECTION_SIGNALS, type InjectionFamily, type InjectionSignal } from './injection-patterns.js'
export { PromptLeakScanner, type PromptLeakOptions } from './prompt-leak.js'
export { SecretsScanner, SECRET_RULES, detectSecrets, type SecretsOptions } from './secrets.js'
export { REDACTED_SCANNERS, Redactor, redactText, type RedactorOptions } from './redact.js'
export { WindowedStream, type WindowDetector, type WindowOptions } from './stream.js'
export { normalizeForMatching, decodeSegments, type Normalized, type DecodedSegment } from './normalize.js'
export { DEFAULT_MAX_SCAN_CHARS, shannonEntropy, type TextMatch } from './util.js'

export interface DefaultScannerOptions {
  promptInjection?: PromptInjectionOptions | false
  pii?: PiiOptions | false
  secrets?: SecretsOptions | false
  hiddenUnicode?: HiddenUnicodeOptions | false
  exfiltration?: ExfiltrationOptions | false
  promptLeak?: PromptLeakOptions | false
  /** the policy scanner is added only when given (it has nothing to check without configuration) */
  policy?: PolicyOptions
}

/** One of each built-in scanner; pass `false` to leave one out, or options to configure it. */
export function defaultScanners(options: DefaultScannerOptions = {}): Scanner[] {
  const out: Scanner[] = []
  if (options.promptInjection !== false) out.push(new PromptInjectionScanner(options.promptInjection ?? {}))
  if (options.secrets !== false) out.push(new SecretsScanner(options.secrets ?? {}))
  if (options.pii !== false) out.push(new PiiScanner(options.pii ?? {}))
  if (options.hiddenUnicode !== false) out.push(new HiddenUnicodeScanner(options.hiddenUnicode ?? {}))
  if (options.exfiltration !== false) out.push(new ExfiltrationScanner(options.exfiltration ?? {}))
  if (options.promptLeak !== false) out.push(new PromptLeakScanner(options.promptLeak ?? {}))
  if (options.policy) out.push(new PolicyScanner(options.policy))
  return out
}
