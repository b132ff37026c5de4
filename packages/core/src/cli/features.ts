/** `bpfkit features [--json]`: what this kernel and process can do, from probes. */
import { features, type Answer, type FeatureReport } from '../features.js'
import { parse, type Command } from './command.js'

export const featuresCommand: Command = {
  name: 'features',
  summary: 'probe what this kernel and process can do (BTF, ring buffer, kprobes, fentry, LSM, ...)',
  help: `usage: bpfkit features [--json]

Probes the kernel by loading tiny programs and creating tiny maps, and reports
each feature with the reason for every "no".

  --json   print the report as one JSON object`,
  run(args) {
    const { values } = parse(args, { json: { type: 'boolean' } }, false)
    const report = features()
    if (values.json) console.log(JSON.stringify(report, null, 2))
    else console.log(format(report))
    return 0
  },
}

function format(r: FeatureReport): string {
  const line = (name: string, a: Answer) => `  ${name.padEnd(22)} ${a.supported ? 'yes' : 'no '}${a.reason ? `  (${a.reason})` : ''}`
  const yes = (b: boolean) => (b ? 'yes' : 'no')
  return [
    `kernel ${r.kernel}`,
    'programs and maps:',
    line('BTF', r.btf),
    line('ring buffer', r.ringbuf),
    line('bpf_loop', r.bpf_loop),
    line('bpf_send_signal', r.bpf_send_signal),
    line('batch map commands', r.map_batch),
    line('tracepoints', r.tracepoints),
    line('uprobes', r.uprobes),
    line('uprobe_multi', r.uprobe_multi),
    line('kprobes', r.kprobes),
    line('fentry/fexit', r.fentry),
    line('LSM programs', r.lsm),
    `  ${'BPF LSM active'.padEnd(22)} ${yes(r.lsm.active)}  (${r.lsm.activeLsms.join(',') || 'securityfs not mounted'})`,
    'file systems:',
    `  ${'cgroup v2'.padEnd(22)} ${r.mounts.cgroup2 ?? 'not mounted'}`,
    `  ${'bpffs'.padEnd(22)} ${r.mounts.bpffs ?? 'not mounted'}`,
    `  ${'tracefs'.padEnd(22)} ${r.mounts.tracefs ?? 'not mounted'}`,
    'process:',
    ...Object.entries(r.capabilities).map(([k, v]) => `  ${k.padEnd(22)} ${yes(v)}`),
    `  ${'lockdown'.padEnd(22)} ${r.lockdown}`,
  ].join('\n')
}
