{
  "targets": [
    {
      "target_name": "bpfkit",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
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
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["<(module_root_dir)/deps/libbpf/lib/libbpf.a", "-lelf", "-lz"]
    }
  ]
}
