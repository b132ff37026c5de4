/** Where the enricher reports operational problems (API server down, garbage, ...). */
export interface Logger {
  warn(message: string): void
}

/** Default: one line on stderr per distinct problem. */
export const consoleLogger: Logger = { warn: (m) => console.warn(m) }
