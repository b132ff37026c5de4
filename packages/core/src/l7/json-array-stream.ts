/**
 * A JSON array delivered element by element: Gemini's streamGenerateContent
 * (without `alt=sse`) answers `[{...}\r\n,{...}\r\n]` as application/json and
 * flushes each element as it is generated. This scanner finds the top-level
 * elements as the text arrives. It tracks only nesting depth and strings
 * (no parse tree), so its memory is the element being collected, capped.
 */

export interface JsonArrayCallbacks {
  /** the JSON text of one top-level element */
  element(text: string): void
  /** an element was dropped (too long, or cut off at the end of the body) */
  drop(reason: string): void
}

type State =
  | 'start' // before the opening '['
  | 'between' // inside the array, between elements
  | 'element' // inside an object/array element
  | 'string' // inside a string element
  | 'scalar' // inside a number/true/false/null element
  | 'done' // after the closing ']'
  | 'not-array' // the body is not a JSON array: nothing to stream (the body itself is still reported whole)
  | 'resync' // after a gap: waiting for a line starting with ','

const WS = new Set([' ', '\t', '\r', '\n', '\uFEFF'])

export class JsonArrayScanner {
  private state: State = 'start'
  private depth = 0
  private inString = false
  private escape = false
  /** the element collected so far (earlier chunks) */
  private elem = ''
  private elemLen = 0
  private dropping = false
  /** resync: a newline was seen and only blanks since */
  private lineStart = false

  constructor(
    private readonly maxElementChars: number,
    private readonly cb: JsonArrayCallbacks,
  ) {}

  push(text: string): void {
    let segStart = -1 // start of the current element within `text`
    const n = text.length
    for (let i = 0; i < n; i++) {
      const c = text[i]!
      switch (this.state) {
        case 'start':
          if (c === '[') this.state = 'between'
          else if (!WS.has(c)) this.state = 'not-array'
          break
        case 'between':
          if (c === ']') this.state = 'done'
          else if (c === ',' || WS.has(c)) break
          else {
            segStart = i
            this.elem = ''
            this.elemLen = 0
            this.dropping = false
            if (c === '{' || c === '[') {
              this.state = 'element'
              this.depth = 1
              this.inString = false
              this.escape = false
            } else if (c === '"') {
              this.state = 'string'
              this.escape = false
            } else this.state = 'scalar'
          }
          break
        case 'element':
          if (this.inString) {
            if (this.escape) this.escape = false
            else if (c === '\\') this.escape = true
            else if (c === '"') this.inString = false
          } else if (c === '"') this.inString = true
          else if (c === '{' || c === '[') this.depth++
          else if (c === '}' || c === ']') {
            if (--this.depth === 0) {
              this.finish(text, segStart, i + 1)
              segStart = -1
            }
          }
          break
        case 'string':
          if (this.escape) this.escape = false
          else if (c === '\\') this.escape = true
          else if (c === '"') {
            this.finish(text, segStart, i + 1)
            segStart = -1
          }
          break
        case 'scalar':
          if (c === ',' || c === ']' || WS.has(c)) {
            this.finish(text, segStart, i)
            segStart = -1
            if (c === ']') this.state = 'done'
          }
          break
        case 'resync':
          if (c === '\n') this.lineStart = true
          else if (c === ',' && this.lineStart) this.state = 'between'
          else if (c === ']' && this.lineStart) this.state = 'done'
          else if (!WS.has(c)) this.lineStart = false
          break
        default:
          return // 'done', 'not-array': nothing more to find
      }
    }
    if (segStart !== -1) this.collect(text.slice(segStart))
    else if (this.state === 'element' || this.state === 'string' || this.state === 'scalar') {
      if (this.elemLen > 0 || this.dropping) this.collect(text)
    }
  }

  /**
   * Bytes were lost. Elements cannot be re-found by counting brackets, so the
   * scanner waits for Gemini's separator, a ',' at the start of a line: JSON
   * strings cannot contain raw newlines, and pretty-printed nested arrays put
   * their commas at line ends, so only the top level has commas at line starts.
   */
  gap(): void {
    if (this.state === 'not-array' || this.state === 'done') return
    this.state = 'resync'
    this.lineStart = false
    this.elem = ''
    this.elemLen = 0
    this.dropping = false
  }

  /** End of body: an element still open was cut off. */
  end(): void {
    if (this.state === 'scalar' && !this.dropping && this.elemLen > 0) {
      this.emit(this.elem)
      this.state = 'done'
    } else if (this.state === 'element' || this.state === 'string' || this.state === 'scalar') {
      this.cb.drop('JSON array body ended inside an element')
      this.state = 'done'
    }
    this.elem = ''
  }

  private collect(piece: string): void {
    if (this.dropping) return
    this.elemLen += piece.length
    if (this.elemLen > this.maxElementChars) {
      this.dropping = true
      this.elem = ''
      this.cb.drop(`JSON array element longer than ${this.maxElementChars} characters`)
      return
    }
    this.elem += piece
  }

  private finish(text: string, from: number, to: number): void {
    // the element started in this chunk (from >= 0) or earlier (collected in elem)
    this.collect(text.slice(Math.max(0, from), to))
    const dropped = this.dropping
    const out = this.elem
    this.state = 'between'
    this.elem = ''
    this.elemLen = 0
    this.dropping = false
    if (!dropped) this.emit(out)
  }

  private emit(text: string): void {
    this.cb.element(text)
  }
}
