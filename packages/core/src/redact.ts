/**
 * Credential redaction for what sensors emit outside the HTTP layer, chiefly
 * process command lines: `curl -H "Authorization: Bearer sk-…"`,
 * `mysql -pSECRET`, `--token=…`, `https://user:pass@host`. Process events
 * are logged and shipped, so a key typed on a command line must not travel
 * with them (Tetragon users configure the same with redaction filters; here
 * it is on by default and `redactArgs: false` turns it off).
 *
 * Only the secret part is replaced by REDACTED; the rest of the argument
 * stays, so the event still says what ran. Patterns are linear-time.
 */

export const REDACTED = '[REDACTED]'

/**
 * Well-known credential formats, matched anywhere in a string. Deliberately broad (redaction
 * would rather mask too much); @bpfkit/llm's secrets scanner (scanners/secrets.ts) keeps a
 * precise list with entropy and validation checks for findings. Add a new format to both.
 */
export const CREDENTIAL_FORMATS: readonly { name: string; pattern: RegExp }[] = [
  { name: 'anthropic_api_key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { name: 'openai_api_key', pattern: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g },
  { name: 'aws_access_key_id', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g },
  { name: 'github_token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g },
  { name: 'gitlab_token', pattern: /\bglpat-[A-Za-z0-9_-]{20,}/g },
  { name: 'slack_token', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
  { name: 'stripe_key', pattern: /\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}/g },
  { name: 'google_api_key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
]

/** All of CREDENTIAL_FORMATS as one pattern: one pass per string instead of one per format. */
const ANY_CREDENTIAL = new RegExp(CREDENTIAL_FORMATS.map((f) => f.pattern.source).join('|'), 'g')

/** Header-style credentials inside one argument: "Authorization: Bearer x", "X-Api-Key: x". */
const HEADER_VALUE = /\b((?:proxy-)?authorization|x-api-key|api-key|cookie|x-auth-token)(\s*:\s*)(?:(bearer|basic|token|digest)\s+)?[^\r\n]+/gi
/** key=value or --key=value where the key names a secret. */
const SECRET_ASSIGNMENT = /\b([A-Za-z0-9_.-]*(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth)[A-Za-z0-9_.-]*)(=)([^\s&]+)/gi
/** userinfo in URLs: scheme://user:password@host */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:)([^\s/@]+)(@)/gi
/** flags whose next argument is a secret (`--password x`, `--api-key x`) */
const SECRET_FLAG = /^--?[a-z0-9-]*(?:password|passwd|secret|token|api-?key|apikey|access-key|private-key|credentials?)$/i
/** MySQL-family clients take the password glued to -p */
const MYSQL = /(?:^|\/)(?:mysql|mysqldump|mariadb|mysqladmin)$/

/** Replaces credentials in free text (one command-line argument, a log line). */
export function redactSecrets(text: string): string {
  if (text.length === 0) return text
  let out = text
  // each structural pattern needs its punctuation: skip the regex when it is absent (most arguments)
  if (out.includes(':')) out = out.replace(HEADER_VALUE, (_m, name: string, sep: string, scheme: string | undefined) => `${name}${sep}${scheme ? `${scheme} ` : ''}${REDACTED}`)
  if (out.includes('=')) out = out.replace(SECRET_ASSIGNMENT, (_m, key: string, eq: string) => `${key}${eq}${REDACTED}`)
  if (out.includes('@')) out = out.replace(URL_PASSWORD, (_m, pre: string, _pw: string, at: string) => `${pre}${REDACTED}${at}`)
  return out.replace(ANY_CREDENTIAL, REDACTED)
}

/**
 * Redacts a command line: each argument through redactSecrets, the argument
 * after a secret-taking flag (`--password x`, `--api-key x`), and mysql-style
 * `-pSECRET`. argv[0] is kept as is.
 */
export function redactCommandArgs(args: readonly string[]): string[] {
  const out = new Array<string>(args.length)
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const prev = i > 1 ? args[i - 1]! : ''
    if (i > 0 && SECRET_FLAG.test(prev) && !a.startsWith('-')) out[i] = REDACTED
    else if (i > 0 && a.length > 2 && a.startsWith('-p') && MYSQL.test(args[0] ?? '')) out[i] = `-p${REDACTED}`
    else out[i] = i === 0 ? a : redactSecrets(a)
  }
  return out
}
