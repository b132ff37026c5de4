/**
 * @bpfkit/core: load libbpf-style eBPF objects, typed maps, attach points and
 * ring-buffer event streams from Node.js.
 *
 * Typical flow (spec/live split, as in cilium/ebpf):
 *
 *     const spec = CollectionSpec.fromFile('prog.bpf.o')
 *     spec.variables.must('target_pid').set(1234)
 *     using coll = new Collection(spec)
 *     using link = coll.program('handle_exec').attach()
 *     for await (const ev of coll.ringBuffer('events', { codec: 'event' })) console.log(ev)
 */
export * from './errors.js'
export type { Codec } from './codec.js'
export { bytesCodec } from './codec.js'
export { CollectionSpec, ProgramSpec, MapSpec, VariableSpec, NamedMap } from './spec.js'
export { Collection, type CollectionOptions } from './collection.js'
export { BpfMap, MAP_TYPES, type UpdateFlag, type MapCodecs, type CreateMapOptions } from './map.js'
export { Program, type UprobeOptions } from './program.js'
export { Link } from './link.js'
export { RingBuffer, RecordBatch, type RingBufferOptions, type RingBufferStats, type LostCounter } from './ringbuf.js'
export { probeFeature, resetFeatureCache, bundledObject, type FeatureName, type FeatureProbe } from './probes.js'
export { effectiveCapabilities } from './caps.js'
export { resolveUprobeTarget, type UprobeTarget, type ResolvedUprobeTarget } from './uprobe-target.js'
export * as btf from './btf/index.js'
export * as elf from './elf/index.js'
export { features, type FeatureReport, type Answer } from './features.js'
export { CgroupPaths, cgroup2Mounts, findCgroup2Mount, parseCgroup2Mounts, pickCgroup2Mount, rankCgroup2Mounts, type Cgroup2MountInfo } from './cgroup-mounts.js'
export { ProcessSensor, type ProcessSensorOptions, type ProcessFilter } from './sensors/process/sensor.js'
export { ProcessTable, type ProcessEntry } from './sensors/process/table.js'
export type { ProcessEvent, ProcessExecEvent, ProcessExitEvent, ProcessForkEvent, ProcessInfo, AncestorInfo, EventBase } from './sensors/process/events.js'
export * as l7 from './l7/index.js'
export { HttpPipeline, replayCapture, CaptureWriter, readCapture, type CaptureRecord } from './l7/index.js'
export * as tls from './sensors/tls/index.js'
export { TlsSensor } from './sensors/tls/index.js'
export * as plain from './sensors/plain/index.js'
export { PlainSocketSensor } from './sensors/plain/index.js'
export { REDACTED, CREDENTIAL_FORMATS, redactSecrets, redactCommandArgs } from './redact.js'
