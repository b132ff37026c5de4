/**
 * Cleartext TCP capture (see sensor.ts): HTTP/1 and HTTP/2 connections
 * recognised in the kernel from their first bytes, read at the syscalls.
 */
export {
  PlainSocketSensor,
  DEFAULT_PLAIN_MAX_BYTES_PER_CALL,
  DEFAULT_PLAIN_RING_BYTES,
  MIN_PLAIN_MAX_BYTES_PER_CALL,
  type PlainSocketSensorOptions,
  type PlainSocketSensorEvents,
  type PlainStats,
  type PlainKernelCounters,
  type PlainGapEvent,
} from './sensor.js'
export type { PlainRecord, PlainCloseEvent, PlainProtocol } from './record.js'
