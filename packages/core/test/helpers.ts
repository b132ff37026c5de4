/**
 * Shared test plumbing for the real-kernel tests: the privilege gate (run and
 * fail under CI=true, skip with a printed reason elsewhere), paths of the test
 * objects, compiling C on the fly, cgroup v2 and fd counting, and running a
 * long-lived command (a CLI, the demo agent, the LLM mock) like a user would.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'vitest'
import { findSharedDir } from '../../../scripts/shared-dir.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
/**
 * ../shared (reference peers and research notes) beside the checkout; for a clone made
 * elsewhere from a local checkout, beside the repository it was cloned from; or BPFKIT_SHARED_DIR.
 */
export const sharedDir = findSharedDir(repoRoot)

/** Why the eBPF tests cannot run here, or null if they can. */
export function bpfUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not root (run as root or grant CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN)'
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'no kernel BTF at /sys/kernel/btf/vmlinux'
  if (!existsSync(testObject('maps'))) return 'test BPF objects are not built (run bash bpf/build.sh)'
  try {
    createRequire(import.meta.url)('@bpfkit/native')
  } catch (e) {
    return `native addon not built (${(e as Error).message.split('\n')[0]})`
  }
  return null
}

const reason = bpfUnavailableReason()

/**
 * describe() for tests that need a real kernel. Under CI=true a missing
 * privilege is a failing test, never a silent skip.
 */
export function describeBpf(name: string, fn: () => void): void {
  if (!reason) return describe(name, fn)
  if (process.env.CI === 'true') {
    return describe(name, () => {
      it('can run eBPF tests', () => {
        throw new Error(`eBPF integration tests cannot run under CI=true: ${reason}`)
      })
    })
  }
  console.warn(`[bpfkit] skipping "${name}": ${reason}`)
  return describe.skip(name, fn)
}

export function testObject(name: string): string {
  return join(repoRoot, 'bpf', 'build', 'test', `${name}.bpf.o`)
}

export function tempDir(prefix = 'bpfkit-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/**
 * Writes a self-signed certificate for local TLS test servers into `dir`
 * (cert.pem, key.pem), valid for 127.0.0.1, localhost and `extraNames`.
 */
export function selfSignedCert(dir: string, extraNames: string[] = []): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const san = ['IP:127.0.0.1', 'DNS:localhost', ...extraNames.map((n) => `DNS:${n}`)].join(',')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert], { stdio: 'ignore' })
  return { cert, key }
}

/** Compiles a BPF C file (CO-RE, against bpf/build/vmlinux.h) into a temp dir. */
export function compileBpf(src: string): string {
  const out = join(tempDir(), `${src.split('/').pop()!.replace(/\.c$/, '')}.o`)
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', `-I${join(repoRoot, 'bpf', 'build')}`,
    `-I${join(repoRoot, 'bpf', 'include')}`, '-c', src, '-o', out])
  return out
}

/** Compiles a host C program with gcc. */
export function compileC(source: string, name: string, flags: string[] = []): string {
  const dir = tempDir()
  const src = join(dir, `${name}.c`)
  writeFileSync(src, source)
  const out = join(dir, name)
  execFileSync('gcc', ['-O1', '-g', '-o', out, src, ...flags])
  return out
}

/** Number of open file descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

/** A cgroup v2 mount point, mounting one if the machine has none. */
export function cgroup2Root(): string {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n')
  for (const line of mounts) {
    const [, mnt, type] = line.split(' ')
    if (type === 'cgroup2' && mnt) return mnt
  }
  const dir = '/tmp/bpfkit-cgroup2'
  mkdirSync(dir, { recursive: true })
  execFileSync('mount', ['-t', 'cgroup2', 'none', dir])
  return dir
}

/** The error `fn` throws (fails the test if it returns normally). */
export function catchErr(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected an error')
}

/**
 * Resolves at the child's first stdout output (its "ready" line); rejects if it exits or cannot
 * start first, so a child that fails here fails the test at once instead of hanging it.
 */
export function firstOutput(child: ChildProcess, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve())
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${signal ?? code}) before it was ready`)))
    child.once('error', reject)
  })
}

/** A long-running node script started by startScript(). */
export interface Running {
  child: ChildProcess
  out: () => string
  err: () => string
  /** SIGINT, as Ctrl-C; resolves with the exit code */
  stop: () => Promise<number | null>
}

/** Runs `node script ...args` and resolves once its stderr contains `ready` (rejects if it exits first). */
export async function startScript(script: string, args: string[], ready: string): Promise<Running> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (err.includes(ready)) {
        clearInterval(t)
        resolve()
      }
    }, 50)
    child.once('exit', (code) => {
      clearInterval(t)
      reject(new Error(`${script} ${args.join(' ')} exited with ${code}: ${err}`))
    })
  })
  return {
    child,
    out: () => out,
    err: () => err,
    stop: () => {
      child.removeAllListeners('exit')
      const done = new Promise<number | null>((r) => child.once('exit', r))
      child.kill('SIGINT')
      return done
    },
  }
}

/** Polls `cond` every 100 ms for up to `ms`; the caller asserts what it waited for. */
export async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The local HTTPS server answering in OpenAI's wire format (packages/llm/test/fixtures/live/server.mjs). */
export async function startLlmMock(): Promise<{ port: number; stop: () => void }> {
  const dir = tempDir('bpfkit-llm-mock-')
  selfSignedCert(dir)
  const mock = join(repoRoot, 'packages', 'llm', 'test', 'fixtures', 'live', 'server.mjs')
  const server = spawn(process.execPath, [mock, join(dir, 'cert.pem'), join(dir, 'key.pem')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).port)))
  return { port, stop: () => server.kill() }
}

let nodeCommCache: string | undefined
/**
 * The kernel comm of a process started from this Node binary: 'node' up to
 * Node 22; Node 24 names its main thread 'MainThread', which is then also the
 * process's comm. Asked of a real child, not guessed from the version.
 */
export function nodeComm(): string {
  nodeCommCache ??= execFileSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/comm', 'utf8').trim())"], { encoding: 'utf8' })
  return nodeCommCache
}
