/* Shared helpers for bpfkit's eBPF programs.
 *
 * Ring buffers and loss accounting: BPFKIT_RINGBUF(name, bytes) declares a
 * BPF_MAP_TYPE_RINGBUF map `name` and a per-CPU counter map `name_lost`.
 * bpfkit_reserve() counts every failed reservation there, and the user-space
 * RingBuffer reads `<ring>_lost` by convention and reports it as `lost`, so a
 * full ring never drops events silently.
 */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#define BPFKIT_RINGBUF(name, bytes)                                        \
  struct {                                                                 \
    __uint(type, BPF_MAP_TYPE_RINGBUF);                                    \
    __uint(max_entries, bytes);                                            \
  } name SEC(".maps");                                                     \
  struct {                                                                 \
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                               \
    __uint(max_entries, 1);                                                \
    __type(key, __u32);                                                    \
    __type(value, __u64);                                                  \
  } name##_lost SEC(".maps")

/* Reserve `size` bytes in `ring`; on failure bump `ring`_lost and return NULL. */
#define bpfkit_reserve(ring, size)                                         \
  ({                                                                       \
    void *__r = bpf_ringbuf_reserve(&ring, size, 0);                       \
    if (!__r) {                                                            \
      __u32 __k = 0;                                                       \
      __u64 *__n = bpf_map_lookup_elem(&ring##_lost, &__k);                \
      if (__n) *__n += 1;                                                  \
    }                                                                      \
    __r;                                                                   \
  })

/* Keep `struct T` in the object's BTF even when only local variables use it,
 * so user space can derive a codec for ring-buffer records by name. */
#define BPFKIT_EXPORT_TYPE(T) struct T *__bpfkit_type_##T __attribute__((unused))
