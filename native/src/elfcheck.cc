// Structural validation of a BPF ELF object before libbpf 1.1 parses it.
//
// libbpf 1.1 trusts its input: a fuzzed object crashes it (out-of-range BTF type ids, symbol offsets past
// their section, relocations against missing sections, ...). Later libbpf releases added some of these checks
// (btf_sanity_check in 1.3, the symbol-offset overflow fix in 1.6); this file performs them, plus a few more
// (cycles in BTF reference chains make libbpf loop forever), so that corrupt input becomes an error.
// Only images that no compiler/linker produces are rejected.
#include <elf.h>
#include <linux/btf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace bpfkit {

namespace {

bool InRange(uint64_t off, uint64_t size, uint64_t total) { return off <= total && size <= total - off; }

template <typename T>
T Rd(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof(T));
  return v;
}

// ---------------------------------------------------------------------------
// BTF

struct BtfView {
  const uint8_t* types = nullptr;
  uint32_t typeLen = 0;
  const uint8_t* strs = nullptr;
  uint32_t strLen = 0;
  std::vector<uint32_t> offs;  // offs[id - 1] = offset of type id in `types`
};

uint32_t Kind(uint32_t info) { return (info >> 24) & 0x1f; }
uint32_t Vlen(uint32_t info) { return info & 0xffff; }

// Size of one type record, or -1 for kinds libbpf 1.1 does not know.
int64_t TypeSize(uint32_t info) {
  const int64_t base = sizeof(struct btf_type);
  uint32_t vlen = Vlen(info);
  switch (Kind(info)) {
    case BTF_KIND_FWD: case BTF_KIND_CONST: case BTF_KIND_VOLATILE: case BTF_KIND_RESTRICT:
    case BTF_KIND_PTR: case BTF_KIND_TYPEDEF: case BTF_KIND_FUNC: case BTF_KIND_FLOAT: case BTF_KIND_TYPE_TAG:
      return base;
    case BTF_KIND_INT: return base + 4;
    case BTF_KIND_ENUM: return base + (int64_t)vlen * 8;
    case BTF_KIND_ENUM64: return base + (int64_t)vlen * 12;
    case BTF_KIND_ARRAY: return base + 12;
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: return base + (int64_t)vlen * 12;
    case BTF_KIND_FUNC_PROTO: return base + (int64_t)vlen * 8;
    case BTF_KIND_VAR: return base + 4;
    case BTF_KIND_DATASEC: return base + (int64_t)vlen * 12;
    case BTF_KIND_DECL_TAG: return base + 4;
    default: return -1;
  }
}

bool CheckBtf(const uint8_t* p, size_t n, std::string* why) {
  if (n < 24) return *why = ".BTF section too small for a header", false;
  uint16_t magic = Rd<uint16_t>(p);
  if (magic != BTF_MAGIC) return *why = ".BTF has a bad magic (or foreign byte order)", false;
  uint32_t hdrLen = Rd<uint32_t>(p + 4);
  if (hdrLen < 24 || hdrLen > n) return *why = ".BTF header length out of range", false;
  uint32_t typeOff = Rd<uint32_t>(p + 8), typeLen = Rd<uint32_t>(p + 12);
  uint32_t strOff = Rd<uint32_t>(p + 16), strLen = Rd<uint32_t>(p + 20);
  uint64_t metaLeft = n - hdrLen;
  if ((uint64_t)strOff + strLen > metaLeft) return *why = ".BTF string section past the end", false;
  if ((uint64_t)typeOff + typeLen > strOff) return *why = ".BTF type and string sections overlap", false;
  if (typeOff % 4) return *why = ".BTF type section misaligned", false;
  BtfView v;
  v.types = p + hdrLen + typeOff;
  v.typeLen = typeLen;
  v.strs = p + hdrLen + strOff;
  v.strLen = strLen;
  if (strLen == 0 || strLen - 1 > 0x7fffffff || v.strs[strLen - 1] != 0 || v.strs[0] != 0)
    return *why = ".BTF string section malformed", false;

  uint32_t pos = 0;
  while ((uint64_t)pos + sizeof(struct btf_type) <= typeLen) {
    uint32_t info = Rd<uint32_t>(v.types + pos + 4);
    int64_t sz = TypeSize(info);
    if (sz < 0) return *why = ".BTF has an unsupported type kind " + std::to_string(Kind(info)), false;
    if ((uint64_t)pos + (uint64_t)sz > typeLen)
      return *why = ".BTF type [" + std::to_string(v.offs.size() + 1) + "] is malformed", false;
    v.offs.push_back(pos);
    pos += (uint32_t)sz;
  }
  if (pos != typeLen) return *why = ".BTF type data is malformed", false;

  const uint32_t count = (uint32_t)v.offs.size();  // valid ids: 0 (void) .. count
  auto strOk = [&](uint32_t off) { return off < v.strLen; };
  auto idOk = [&](uint32_t id) { return id <= count; };
  auto kindOf = [&](uint32_t id) -> uint32_t { return id == 0 ? 0 : Kind(Rd<uint32_t>(v.types + v.offs[id - 1] + 4)); };
  std::vector<uint32_t> next(count + 1, 0);  // single-successor edges, for cycle detection

  for (uint32_t id = 1; id <= count; id++) {
    const uint8_t* t = v.types + v.offs[id - 1];
    uint32_t nameOff = Rd<uint32_t>(t), info = Rd<uint32_t>(t + 4), type = Rd<uint32_t>(t + 8);
    uint32_t kind = Kind(info), vlen = Vlen(info);
    const uint8_t* rest = t + sizeof(struct btf_type);
    std::string bad = ".BTF type [" + std::to_string(id) + "] ";
    if (!strOk(nameOff)) return *why = bad + "has an invalid name offset", false;
    switch (kind) {
      case BTF_KIND_PTR: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG: case BTF_KIND_TYPE_TAG:
        if (!idOk(type)) return *why = bad + "references an invalid type id", false;
        next[id] = type;
        break;
      case BTF_KIND_ARRAY: {
        uint32_t elem = Rd<uint32_t>(rest), index = Rd<uint32_t>(rest + 4);
        if (!idOk(elem) || !idOk(index)) return *why = bad + "(array) references an invalid type id", false;
        next[id] = elem;
        break;
      }
      case BTF_KIND_STRUCT: case BTF_KIND_UNION:
        for (uint32_t i = 0; i < vlen; i++) {
          const uint8_t* m = rest + i * 12;
          if (!strOk(Rd<uint32_t>(m)) || !idOk(Rd<uint32_t>(m + 4)))
            return *why = bad + "has an invalid member", false;
        }
        break;
      case BTF_KIND_ENUM:
        for (uint32_t i = 0; i < vlen; i++)
          if (!strOk(Rd<uint32_t>(rest + i * 8))) return *why = bad + "has an invalid enumerator name", false;
        break;
      case BTF_KIND_ENUM64:
        for (uint32_t i = 0; i < vlen; i++)
          if (!strOk(Rd<uint32_t>(rest + i * 12))) return *why = bad + "has an invalid enumerator name", false;
        break;
      case BTF_KIND_FUNC:
        if (!idOk(type) || type == 0) return *why = bad + "references an invalid type id", false;
        if (kindOf(type) != BTF_KIND_FUNC_PROTO) return *why = bad + "(func) does not reference a FUNC_PROTO", false;
        break;
      case BTF_KIND_FUNC_PROTO:
        if (!idOk(type)) return *why = bad + "has an invalid return type", false;
        for (uint32_t i = 0; i < vlen; i++) {
          const uint8_t* m = rest + i * 8;
          if (!strOk(Rd<uint32_t>(m)) || !idOk(Rd<uint32_t>(m + 4))) return *why = bad + "has an invalid parameter", false;
        }
        break;
      case BTF_KIND_DATASEC:
        for (uint32_t i = 0; i < vlen; i++) {
          uint32_t vt = Rd<uint32_t>(rest + i * 12);
          if (!idOk(vt) || vt == 0) return *why = bad + "(datasec) references an invalid type id", false;
          uint32_t vk = kindOf(vt);
          if (vk != BTF_KIND_VAR && vk != BTF_KIND_FUNC) return *why = bad + "(datasec) entry is not a VAR", false;
        }
        break;
      default:
        break;
    }
  }
  // Reference chains (modifiers, typedefs, pointers, vars, arrays) must end: libbpf follows them without a
  // depth limit. Colour-marking walk over the single-successor graph.
  std::vector<uint8_t> state(count + 1, 0);  // 0 new, 1 on the current path, 2 known to terminate
  std::vector<uint32_t> path;
  for (uint32_t id = 1; id <= count; id++) {
    uint32_t cur = id;
    path.clear();
    while (cur != 0 && state[cur] == 0) {
      state[cur] = 1;
      path.push_back(cur);
      cur = next[cur];
    }
    if (cur != 0 && state[cur] == 1) return *why = ".BTF has a reference cycle at type [" + std::to_string(cur) + "]", false;
    for (uint32_t x : path) state[x] = 2;
  }
  return true;
}

bool CheckBtfExt(const uint8_t* p, size_t n, std::string* why) {
  if (n < 8) return *why = ".BTF.ext section too small", false;
  if (Rd<uint16_t>(p) != BTF_MAGIC) return *why = ".BTF.ext has a bad magic", false;
  uint32_t hdrLen = Rd<uint32_t>(p + 4);
  if (hdrLen < 24 || hdrLen > n) return *why = ".BTF.ext header length out of range", false;
  // func_info, line_info (and core_relo when the header has it): offsets relative to the end of the header.
  uint32_t fields = hdrLen >= 32 ? 3 : 2;
  for (uint32_t i = 0; i < fields; i++) {
    uint32_t off = Rd<uint32_t>(p + 8 + i * 8), len = Rd<uint32_t>(p + 12 + i * 8);
    if (len && !InRange((uint64_t)hdrLen + off, len, n)) return *why = ".BTF.ext info section past the end", false;
  }
  return true;
}

}  // namespace

bool CheckBpfElf(const uint8_t* p, size_t n, std::string* why) {
  if (n == 0) return *why = "empty buffer", false;
  if (n < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0) return *why = "not an ELF file (bad magic)", false;
  if (p[EI_CLASS] != ELFCLASS64) return *why = "not a 64-bit ELF file (BPF objects are ELFCLASS64)", false;
  if (n < sizeof(Elf64_Ehdr)) return *why = "truncated ELF header", false;
  if (p[EI_DATA] != ELFDATA2LSB)
    return *why = "big-endian ELF; this host is little-endian (compile with -target bpfel or -target bpf)", false;
  Elf64_Ehdr eh;
  memcpy(&eh, p, sizeof(eh));
  if (eh.e_type != ET_REL || (eh.e_machine != EM_BPF && eh.e_machine != EM_NONE))
    return *why = "not an eBPF object file (ELF type " + std::to_string(eh.e_type) + ", machine " +
                  std::to_string(eh.e_machine) + "; expected a relocatable EM_BPF object from clang -target bpf)",
           false;
  if (eh.e_shoff == 0) return *why = "ELF file has no section header table", false;
  if (eh.e_shentsize != sizeof(Elf64_Shdr)) return *why = "unexpected ELF section header size", false;
  if (eh.e_shoff % 8 != 0) return *why = "misaligned section header table", false;
  if (!InRange(eh.e_shoff, sizeof(Elf64_Shdr), n)) return *why = "section header table outside the file (truncated?)", false;
  const Elf64_Shdr* sh = (const Elf64_Shdr*)(p + eh.e_shoff);
  uint64_t shnum = eh.e_shnum ? eh.e_shnum : sh[0].sh_size;
  if (shnum == 0 || shnum > (n - eh.e_shoff) / sizeof(Elf64_Shdr))
    return *why = "section header table outside the file (truncated?)", false;
  uint64_t strndx = eh.e_shstrndx == SHN_XINDEX ? sh[0].sh_link : eh.e_shstrndx;
  if (strndx == 0 || strndx >= shnum) return *why = "bad section name string table index", false;
  const Elf64_Shdr& shstr = sh[strndx];
  if (shstr.sh_type != SHT_STRTAB || shstr.sh_size == 0 || !InRange(shstr.sh_offset, shstr.sh_size, n) ||
      p[shstr.sh_offset + shstr.sh_size - 1] != 0)
    return *why = "bad section name string table", false;
  auto secName = [&](uint64_t i) { return (const char*)p + shstr.sh_offset + sh[i].sh_name; };

  int symtabs = 0;
  uint64_t symIdx = 0;
  for (uint64_t i = 1; i < shnum; i++) {
    const Elf64_Shdr& s = sh[i];
    std::string sec = "section " + std::to_string(i);
    if (s.sh_name >= shstr.sh_size) return *why = sec + " has a name out of range", false;
    if (s.sh_type != SHT_NOBITS && !InRange(s.sh_offset, s.sh_size, n))
      return *why = sec + " (" + secName(i) + ") extends past the end of the file (truncated?)", false;
    if (s.sh_link >= shnum) return *why = sec + " has a bad sh_link", false;
    if (s.sh_type == SHT_STRTAB && s.sh_size > 0 && p[s.sh_offset + s.sh_size - 1] != 0)
      return *why = sec + " (string table) is not NUL-terminated", false;
    if (s.sh_type == SHT_SYMTAB) {
      symtabs++;
      symIdx = i;
    }
  }
  if (symtabs != 1) return *why = symtabs ? "more than one symbol table" : "no symbol table (stripped object?)", false;

  // Symbols.
  const Elf64_Shdr& st = sh[symIdx];
  if (st.sh_entsize != sizeof(Elf64_Sym) || st.sh_size % sizeof(Elf64_Sym) != 0 || st.sh_offset % 8 != 0)
    return *why = "malformed symbol table", false;
  const Elf64_Shdr& symStr = sh[st.sh_link];
  if (symStr.sh_type != SHT_STRTAB || symStr.sh_size == 0) return *why = "symbol table without a string table", false;
  const Elf64_Sym* syms = (const Elf64_Sym*)(p + st.sh_offset);
  uint64_t nsyms = st.sh_size / sizeof(Elf64_Sym);
  for (uint64_t k = 0; k < nsyms; k++) {
    const Elf64_Sym& y = syms[k];
    if (y.st_name >= symStr.sh_size) return *why = "symbol " + std::to_string(k) + " has a name out of range", false;
    uint16_t x = y.st_shndx;
    if (x != SHN_UNDEF && x < SHN_LORESERVE) {
      if (x >= shnum) return *why = "symbol " + std::to_string(k) + " has a section index out of range", false;
      const Elf64_Shdr& ts = sh[x];
      // Programs and data symbols must lie inside their section (libbpf < 1.6 overflows on huge offsets).
      if (ELF64_ST_TYPE(y.st_info) == STT_FUNC || ELF64_ST_TYPE(y.st_info) == STT_OBJECT) {
        if (!InRange(y.st_value, y.st_size, ts.sh_size))
          return *why = "symbol '" + std::string((const char*)p + symStr.sh_offset + y.st_name) +
                        "' lies outside its section",
                 false;
      }
    }
  }

  // Relocations and BTF.
  for (uint64_t i = 1; i < shnum; i++) {
    const Elf64_Shdr& s = sh[i];
    if (s.sh_type == SHT_REL || s.sh_type == SHT_RELA) {
      size_t es = s.sh_type == SHT_REL ? sizeof(Elf64_Rel) : sizeof(Elf64_Rela);
      if (s.sh_entsize != es || s.sh_size % es != 0 || s.sh_offset % 8 != 0)
        return *why = "malformed relocation section " + std::string(secName(i)), false;
      if (s.sh_link != symIdx) return *why = "relocation section " + std::string(secName(i)) + " uses a bad symbol table", false;
      if (s.sh_info == 0 || s.sh_info >= shnum || sh[s.sh_info].sh_type == SHT_NOBITS)
        return *why = "relocation section " + std::string(secName(i)) + " targets a bad section", false;
      uint64_t cnt = s.sh_size / es;
      for (uint64_t k = 0; k < cnt; k++) {
        const uint8_t* r = p + s.sh_offset + k * es;
        uint64_t info = Rd<uint64_t>(r + 8);
        if (ELF64_R_SYM(info) >= nsyms) return *why = "relocation refers to a symbol out of range", false;
      }
    }
    const char* nm = secName(i);
    if (strcmp(nm, ".BTF") == 0 || strcmp(nm, ".BTF.ext") == 0) {
      if (s.sh_type != SHT_PROGBITS) return *why = std::string(nm) + " section has an unexpected type", false;
      bool ok = strcmp(nm, ".BTF") == 0 ? CheckBtf(p + s.sh_offset, s.sh_size, why)
                                        : CheckBtfExt(p + s.sh_offset, s.sh_size, why);
      if (!ok) return false;
    }
  }
  return true;
}

}  // namespace bpfkit
