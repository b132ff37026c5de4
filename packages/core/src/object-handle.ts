/**
 * Shared ownership of one libbpf object. A Collection and each Program taken
 * from it hold a reference; libbpf's object (and the program fds it owns) is
 * closed when the last reference goes, so a Program stays usable even if the
 * Collection was closed first.
 */
import type { NativeObject } from '@bpfkit/native'

export class ObjectHandle {
  #refs = 0
  constructor(readonly object: NativeObject) {}

  retain(): void {
    this.#refs++
  }

  releaseRef(): void {
    if (--this.#refs <= 0) this.object.close()
  }
}
