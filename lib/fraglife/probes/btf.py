"""Struct sizes and member offsets of the running kernel, from its BTF.

``/sys/kernel/btf/vmlinux`` is the kernel's own type information in BTF
format (Documentation/bpf/btf.rst and include/uapi/linux/btf.h, v6.12):
a header (magic 0xeB9F, ``hdr_len``, then type and string section offsets
relative to the header's end), a type section of ``struct btf_type``
records (name offset, ``info`` = kind in bits 24-28, vlen in bits 0-15,
kind_flag in bit 31, then size or type) each followed by kind-specific
data, and a string section. Type ids start at 1 (0 is void). For structs
and unions each member is ``{name_off, type, offset}``; with kind_flag set
the offset holds the bitfield size in bits 24-31 and the bit offset in
bits 0-23, otherwise it is a bit offset.

The parser here reads that directly; no external tool is needed (Debian's
pahole 1.24 cannot read this kernel's BTF, see toolchain notes). The file
is world-readable, so this probe also runs without root.

Members of anonymous struct/union members are flattened into their parent
with their absolute offsets (``struct page``'s ``_refcount`` lives in an
anonymous union). A struct this kernel lacks is reported as absent.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ._base import ProbeUnavailable, kernel_release

NAME = "btf"
TITLE = "struct sizes and member offsets from /sys/kernel/btf/vmlinux"
REQUIRED = ("kernel", "structs")

VMLINUX = "/sys/kernel/btf/vmlinux"
MAGIC = 0xEB9F

(KIND_UNKN, KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD,
 KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR,
 KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(20)
KIND_NAMES = ("unkn", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef", "volatile",
              "const", "restrict", "func", "func_proto", "var", "datasec", "float", "decl_tag",
              "type_tag", "enum64")

# Bytes of kind-specific data after a btf_type: fixed, or per vlen entry.
_EXTRA_FIXED = {KIND_INT: 4, KIND_ARRAY: 12, KIND_VAR: 4, KIND_DECL_TAG: 4}
_EXTRA_PER_VLEN = {KIND_STRUCT: 12, KIND_UNION: 12, KIND_ENUM: 8, KIND_FUNC_PROTO: 8,
                   KIND_DATASEC: 12, KIND_ENUM64: 12}
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)

#: The structs the book reads, with the current name first and older names after.
STRUCTS = {
    "page": ("page",),
    "folio": ("folio",),
    "sk_buff": ("sk_buff",),
    "skb_shared_info": ("skb_shared_info",),
    "bio_vec": ("bio_vec",),
    "skb_frag": ("skb_frag", "skb_frag_struct"),
    "net_iov": ("net_iov",),
    "netmem_desc": ("netmem_desc",),
    "net_devmem_dmabuf_binding": ("net_devmem_dmabuf_binding",),
    "ubuf_info": ("ubuf_info",),
    "ubuf_info_msgzc": ("ubuf_info_msgzc",),
    "pipe_buffer": ("pipe_buffer",),
    "pipe_buf_operations": ("pipe_buf_operations",),
    "page_pool": ("page_pool",),
    "page_frag_cache": ("page_frag_cache",),
    "io_mapped_ubuf": ("io_mapped_ubuf",),
    # memdescs that already have their own struct (chapter 02), and the devmem owner chain
    "slab": ("slab",),
    "ptdesc": ("ptdesc",),
    "zpdesc": ("zpdesc",),
    "net_iov_area": ("net_iov_area",),
    "dmabuf_genpool_chunk_owner": ("dmabuf_genpool_chunk_owner",),
}

#: Sizes (bytes) and offsets listed in the project's kernel-facts.md for this kernel (BTF-6.18).
EXPECTED_SIZES = {"page": 64, "folio": 256, "sk_buff": 224, "skb_shared_info": 320, "bio_vec": 16,
                  "skb_frag": 16, "pipe_buffer": 40, "pipe_buf_operations": 32,
                  "net_devmem_dmabuf_binding": 160, "net_iov": 64, "page_frag_cache": 16}
EXPECTED_OFFSETS = {("page", "_refcount"): 52, ("folio", "_pincount"): 92,
                    ("skb_shared_info", "dataref"): 32, ("skb_shared_info", "frags"): 48,
                    ("net_devmem_dmabuf_binding", "ref"): 72}


class BTFError(ValueError):
    pass


class BTF:
    """The types of one BTF blob (kernel or module base BTF only)."""

    def __init__(self, blob: bytes):
        if len(blob) < 24:
            raise BTFError("too short for a BTF header")
        magic, version, flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != MAGIC:
            raise BTFError(f"bad magic 0x{magic:04x} (little-endian 0xeb9f expected)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        self.version = version
        self.strings = blob[hdr_len + str_off: hdr_len + str_off + str_len]
        types = memoryview(blob)[hdr_len + type_off: hdr_len + type_off + type_len]
        # records[i] = (kind, name_off, vlen, kind_flag, size_or_type, extra_offset) for id i+1
        self.kind: list[int] = [KIND_UNKN]
        self.name_off: list[int] = [0]
        self.vlen: list[int] = [0]
        self.kflag: list[bool] = [False]
        self.size_type: list[int] = [0]
        self.extra: list[int] = [0]
        self._types = types
        pos, end = 0, len(types)
        unpack = struct.Struct("<III").unpack_from
        while pos < end:
            name_off, info, st = unpack(types, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            pos += 12
            self.kind.append(kind)
            self.name_off.append(name_off)
            self.vlen.append(vlen)
            self.kflag.append(bool(info >> 31))
            self.size_type.append(st)
            self.extra.append(pos)
            if kind in _EXTRA_PER_VLEN:
                pos += _EXTRA_PER_VLEN[kind] * vlen
            elif kind in _EXTRA_FIXED:
                pos += _EXTRA_FIXED[kind]
            elif kind > KIND_ENUM64:
                raise BTFError(f"unknown BTF kind {kind} at type id {len(self.kind) - 1}")
        self._by_name: dict[tuple[int, str], int] | None = None

    @classmethod
    def from_file(cls, path: str | Path = VMLINUX) -> "BTF":
        return cls(Path(path).read_bytes())

    def __len__(self) -> int:
        return len(self.kind) - 1

    def name(self, tid: int) -> str:
        off = self.name_off[tid]
        return self.strings[off: self.strings.index(b"\0", off)].decode()

    def find(self, name: str, kind: int = KIND_STRUCT) -> int | None:
        """The id of the named struct (or other kind); a full definition beats a forward."""
        if self._by_name is None:
            self._by_name = {}
            strings = self.strings
            for tid in range(1, len(self.kind)):
                off = self.name_off[tid]
                if off:
                    key = (self.kind[tid], strings[off: strings.index(b"\0", off)].decode())
                    self._by_name.setdefault(key, tid)
        return self._by_name.get((kind, name))

    def resolve(self, tid: int) -> int:
        """Follow typedefs and qualifiers."""
        while self.kind[tid] in _MODIFIERS:
            tid = self.size_type[tid]
        return tid

    def size(self, tid: int) -> int:
        tid = self.resolve(tid)
        kind = self.kind[tid]
        if tid == 0:
            return 0
        if kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_DATASEC):
            return self.size_type[tid]
        if kind == KIND_PTR:
            return 8
        if kind == KIND_ARRAY:
            elem, _, n = self.array(tid)
            return self.size(elem) * n
        raise BTFError(f"type {tid} ({KIND_NAMES[kind]}) has no size")

    def array(self, tid: int) -> tuple[int, int, int]:
        return struct.unpack_from("<III", self._types, self.extra[tid])

    def type_name(self, tid: int) -> str:
        """A C-like spelling of a type, e.g. ``struct page *`` or ``skb_frag_t[17]``."""
        kind = self.kind[tid]
        if tid == 0:
            return "void"
        if kind == KIND_PTR:
            return self.type_name(self.size_type[tid]) + " *"
        if kind == KIND_ARRAY:
            elem, _, n = self.array(tid)
            return f"{self.type_name(elem)}[{n}]"
        if kind in (KIND_CONST, KIND_VOLATILE, KIND_RESTRICT, KIND_TYPE_TAG):
            return self.type_name(self.size_type[tid])
        name = self.name(tid) or "(anon)"
        if kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64):
            return f"{KIND_NAMES[kind] if kind != KIND_ENUM64 else 'enum'} {name}"
        if kind == KIND_FUNC_PROTO:
            return "(function)"
        return name

    def members(self, tid: int) -> list[tuple[str, int, int, int]]:
        """(name, type id, bit offset, bitfield size or 0) of a struct/union."""
        out = []
        base = self.extra[tid]
        for i in range(self.vlen[tid]):
            name_off, mtype, off = struct.unpack_from("<III", self._types, base + 12 * i)
            if self.kflag[tid]:
                bits, bit_off = off >> 24, off & 0xFFFFFF
            else:
                bits, bit_off = 0, off
            name = self.strings[name_off: self.strings.index(b"\0", name_off)].decode() if name_off else ""
            out.append((name, mtype, bit_off, bits))
        return out

    def layout(self, name: str) -> dict | None:
        """Size and flattened members of ``struct name`` (None if this kernel lacks it)."""
        tid = self.find(name, KIND_STRUCT)
        if tid is None:
            tid = self.find(name, KIND_UNION)
        if tid is None:
            return None
        members: dict[str, dict] = {}
        self._flatten(tid, 0, members)
        return {"size": self.size_type[tid], "kind": KIND_NAMES[self.kind[tid]], "members": members}

    def _flatten(self, tid: int, base_bits: int, out: dict) -> None:
        for mname, mtype, bit_off, bits in self.members(tid):
            rt = self.resolve(mtype)
            abs_bits = base_bits + bit_off
            if not mname and self.kind[rt] in (KIND_STRUCT, KIND_UNION):
                self._flatten(rt, abs_bits, out)
                continue
            if mname in out:  # the first spelling of a name wins (unions overlay alternatives)
                continue
            entry = {"offset": abs_bits // 8, "size": self.size(mtype) if not bits else (bits + 7) // 8,
                     "type": self.type_name(mtype)}
            if bits:
                entry["bit_offset"] = abs_bits
                entry["bits"] = bits
            elif abs_bits % 8:
                entry["bit_offset"] = abs_bits
            if self.kind[rt] == KIND_ARRAY:
                entry["nelems"] = self.array(rt)[2]
            out[mname] = entry


def measure(quick: bool = False) -> dict:
    try:
        btf = BTF.from_file(VMLINUX)
    except FileNotFoundError as e:
        raise ProbeUnavailable(f"{VMLINUX} is missing (kernel built without CONFIG_DEBUG_INFO_BTF?)") from e
    except PermissionError as e:
        raise ProbeUnavailable(f"{VMLINUX} is not readable: {e.strerror}") from e
    except BTFError as e:
        raise ProbeUnavailable(f"{VMLINUX}: {e}") from e
    structs = {}
    for key, names in STRUCTS.items():
        for n in names:
            lay = btf.layout(n)
            if lay is not None:
                lay["present"] = True
                lay["btf_name"] = n
                structs[key] = lay
                break
        else:
            structs[key] = {"present": False, "looked_for": list(names)}
    checks = {}
    for key, want in EXPECTED_SIZES.items():
        got = structs[key].get("size")
        checks[f"sizeof({key})"] = {"expected": want, "found": got, "ok": got == want}
    for (key, member), want in EXPECTED_OFFSETS.items():
        got = structs[key].get("members", {}).get(member, {}).get("offset")
        checks[f"offsetof({key}, {member})"] = {"expected": want, "found": got, "ok": got == want}
    frags = structs["skb_shared_info"].get("members", {}).get("frags", {})
    return {"kernel": kernel_release(), "types": len(btf), "btf_version": btf.version,
            "structs": structs, "checks": checks,
            "max_skb_frags": frags.get("nelems"),
            "checks_source": "sizes and offsets listed in kernel-facts.md [BTF-6.18]"}


def summarize(data: dict) -> list[str]:
    lines = []
    for key, s in data["structs"].items():
        lines.append(f"struct {key:28s} " + (f"{s['size']:>5d} B" if s.get("present") else "absent"))
    bad = [k for k, c in data.get("checks", {}).items() if not c["ok"]]
    n = len(data.get("checks", {}))
    lines.append(f"checks against kernel-facts.md: {n - len(bad)}/{n} agree" + (f"; differ: {bad}" if bad else ""))
    return lines


def frame(data: dict):
    import pandas as pd

    rows = [{"struct": k, "present": s.get("present", False), "size": s.get("size"),
             "members": len(s.get("members", {}))} for k, s in data["structs"].items()]
    return pd.DataFrame(rows).set_index("struct")
