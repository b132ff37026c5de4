// The shipped addon must run anywhere with glibc, libelf and zlib: libbpf and
// libstdc++ are linked in statically.
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it, describe } from 'vitest'
import { repoRoot } from './helpers.js'

describe('native addon packaging', () => {
  it('needs nothing at run time beyond glibc, libelf and zlib', () => {
    const dir = join(repoRoot, 'native', 'prebuilds', 'linux-x64')
    const files = readdirSync(dir).filter((f) => f.endsWith('.node'))
    expect(files.length).toBe(1)
    const ldd = execFileSync('ldd', [join(dir, files[0]!)], { encoding: 'utf8' })
    const libs = ldd.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean)
    const allowed = /^(linux-vdso\.so\.1|\/lib64\/ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libelf\.so\.1|libz\.so\.1)$/
    expect(libs.filter((l) => !allowed.test(l))).toEqual([])
    expect(libs).toContain('libelf.so.1')
    expect(libs).not.toContain('libbpf.so.1')
  })
})
