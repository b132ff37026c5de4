/**
 * A Link is one attachment of a program to a hook (tracepoint, uprobe,
 * cgroup, ...). Closing it detaches the program. Links are independent of the
 * collection that loaded the program: closing the collection keeps them.
 */
import type { NativeLink } from '@bpfkit/native'
import { toBpfError } from './native.js'
import { Resource } from './resource.js'

export class Link extends Resource {
  /** what this link attaches, e.g. "tracepoint sched/sched_process_exec <- process_exec" */
  readonly description: string
  readonly #link: NativeLink
  #pinnedAt: string | null = null

  /** @internal created by Program.attach*() */
  constructor(link: NativeLink, description: string) {
    super(`link (${description})`, () => link.destroy())
    this.#link = link
    this.description = description
  }

  /** File descriptor of the link (a bpf_link, or a perf event on older hooks). */
  get fd(): number {
    this.assertOpen()
    return this.#link.fd
  }

  /** Pins the link on bpffs: the attachment then survives this process. */
  pin(path: string): void {
    this.assertOpen()
    try {
      this.#link.pin(path)
      this.#pinnedAt = path
    } catch (err) {
      throw toBpfError(err, { action: `pin link at ${path}`, capability: 'CAP_BPF', path })
    }
  }

  /** Removes the pin; the link then lives only as long as this object. */
  unpin(): void {
    this.assertOpen()
    if (!this.#pinnedAt) return
    try {
      this.#link.unpin()
      this.#pinnedAt = null
    } catch (err) {
      throw toBpfError(err, { action: `unpin link`, capability: 'CAP_BPF' })
    }
  }

  get pinnedAt(): string | null {
    return this.#pinnedAt
  }

  protected release(): void {
    this.#link.destroy()
  }
}
