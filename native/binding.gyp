{
  "targets": [
    {
      "target_name": "bpfkit",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/elfcheck.cc",
        "src/object.cc",
        "src/link.cc",
        "src/map_ops.cc",
        "src/ringbuf.cc",
        "src/probe.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "deps/libbpf/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "BPFKIT_LIBBPF_VERSION=\"<!(sed -n 's/^Version: *//p' deps/libbpf/lib/pkgconfig/libbpf.pc 2>/dev/null)\""
      ],
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": [
        "-static-libstdc++",
        "-static-libgcc",
        "-Wl,--exclude-libs,ALL",
        "-Wl,--version-script=<(module_root_dir)/src/exports.map",
        "-Wl,--as-needed"
      ],
      "libraries": ["<(module_root_dir)/deps/libbpf/lib/libbpf.a", "-lelf", "-lz"]
    }
  ]
}
