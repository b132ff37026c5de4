/**
 * Replay: run a capture file through the same pipeline a live sensor feeds.
 * The pipeline is driven by record timestamps only (no timers, no wall
 * clock), so a replay produces exactly the events the live run produced.
 * Works without privileges: this is how captures are analysed offline and
 * how the parsers are tested.
 */
import { EventEmitter } from 'eventemitter3'
import { InvalidArgumentError } from '../errors.js'
import { type CaptureHeader, CaptureReader, type CaptureSource, type ReadCaptureOptions } from './capture-format.js'
import type { HttpPipelineEvent, HttpPipelineEventMap } from './events.js'
import { HttpPipeline, type HttpPipelineOptions, type HttpPipelineStats } from './pipeline.js'

export interface ReplayOptions extends HttpPipelineOptions, ReadCaptureOptions {}

const EVENT_TYPES = ['http.request', 'http.response', 'http.exchange', 'http.stream_event', 'l7.diagnostic'] as const

/**
 * A replay in progress. Either `await replay.run()` (events are emitted on
 * the replay, like on a live HttpPipeline) or `for await (const ev of replay)`
 * (events are yielded in order, and emitted too). Runs once.
 */
export class CaptureReplay extends EventEmitter<HttpPipelineEventMap> implements AsyncIterable<HttpPipelineEvent> {
  readonly pipeline: HttpPipeline
  readonly reader: CaptureReader
  private started = false

  constructor(source: CaptureSource, options: ReplayOptions = {}) {
    super()
    const { maxLineBytes, malformed, ...pipelineOptions } = options
    this.reader = new CaptureReader(source, {
      ...(maxLineBytes !== undefined ? { maxLineBytes } : {}),
      ...(malformed !== undefined ? { malformed } : {}),
    })
    this.pipeline = new HttpPipeline(pipelineOptions)
  }

  /** The capture's header, once the first line has been read. */
  get header(): CaptureHeader | undefined {
    return this.reader.header
  }

  get stats(): HttpPipelineStats {
    return this.pipeline.stats
  }

  [Symbol.asyncIterator](): AsyncGenerator<HttpPipelineEvent> {
    if (this.started) throw new InvalidArgumentError('a replay runs only once')
    this.started = true
    return this.events()
  }

  /** Replays the whole capture; resolves with the pipeline's stats. Rejects on a malformed capture (CaptureFormatError) unless `malformed: 'skip'`. */
  async run(): Promise<HttpPipelineStats> {
    for await (const _ of this) {
      // events are emitted as they are produced
    }
    return this.pipeline.stats
  }

  private async *events(): AsyncGenerator<HttpPipelineEvent> {
    const batch: HttpPipelineEvent[] = []
    const collect = (ev: HttpPipelineEvent) => {
      batch.push(ev)
    }
    for (const t of EVENT_TYPES) this.pipeline.on(t, collect)
    const flush = function* (self: CaptureReplay): Generator<HttpPipelineEvent> {
      while (batch.length) {
        const ev = batch.shift()!
        self.emit(ev.type as keyof HttpPipelineEventMap, ev as never)
        yield ev
      }
    }
    try {
      for await (const rec of this.reader) {
        this.pipeline.push(rec)
        yield* flush(this)
      }
      this.pipeline.end()
      yield* flush(this)
    } finally {
      for (const t of EVENT_TYPES) this.pipeline.off(t, collect)
    }
  }
}

/** Replays a capture file (path) or stream through an HttpPipeline. */
export function replayCapture(source: CaptureSource, options?: ReplayOptions): CaptureReplay {
  return new CaptureReplay(source, options)
}
