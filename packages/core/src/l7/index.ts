/**
 * l7: HTTP/1.1 and HTTP/2 from captured TLS plaintext. Pure TypeScript and
 * unprivileged: the kernel sensor produces CaptureRecords, everything here
 * works the same on live records and on replayed capture files.
 */
export * from './record.js'
export * from './capture-format.js'
export * from './stream.js'
export * from './body.js'
export * from './streaming.js'
export * from './events.js'
export { DEFAULT_REDACTED_HEADERS, REDACTED } from './exchange.js'
export { HpackDecoder, type HeaderBlock } from './hpack.js'
export { startLineVerdict, findStartLine } from './http1.js'
export { H2_PREFACE, plausibleFrameHeader, findFrameBoundary, h2ErrorName } from './http2.js'
export { detectDirection, type DetectVerdict } from './detect.js'
export * from './pipeline.js'
export * from './replay.js'
