/**
 * TLS plaintext capture (see sensor.ts): discovery of TLS code in processes,
 * Go return-site scanning, attach-once registry, and the sensor itself.
 */
export {
  TlsSensor,
  DEFAULT_MAX_BYTES_PER_CALL,
  DEFAULT_RING_BYTES,
  MIN_MAX_BYTES_PER_CALL,
  type TlsSensorOptions,
  type TlsSensorEvents,
  type TlsStats,
  type TlsKernelCounters,
  type TlsAttachEvent,
  type TlsGapEvent,
} from './sensor.js'
export type { TlsRecord, TlsCloseEvent, TlsTuple } from './record.js'
export {
  discoverProcess,
  inspectFile,
  preattachTargets,
  candidateFiles,
  InspectCache,
  WELL_KNOWN_LIBRARIES,
  type TlsTarget,
  type TlsLibrary,
  type TlsFunction,
  type TlsProbePoint,
  type SkippedFile,
  type DiscoveryResult,
} from './discovery.js'
export { findReturnSites, x86ReturnOffsets, arm64ReturnOffsets, type ReturnSites, type GoFunctionRange } from './go-ret.js'
export { isGoBinary, goVersion, findGoFunction, findInPclntab, type GoFunction } from './go-binary.js'
export { AttachRegistry, type AttachedFile, type Holder } from './attach-registry.js'
