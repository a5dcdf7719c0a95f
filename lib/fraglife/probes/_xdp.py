"""An XDP_PASS program loaded with bpf(2) and attached to a device with rtnetlink, no tools.

Why: veth runs its NAPI and its page_pool only when the receiving end has an
XDP program (``veth_enable_xdp()`` -> ``veth_napi_add()`` and
``veth_create_page_pool()``, drivers/net/veth.c, v6.12); a program that
passes every packet (``return XDP_PASS``) changes nothing else on the path
but where the packet's memory comes from.

The program is two instructions, ``r0 = XDP_PASS; exit`` (struct bpf_insn,
include/uapi/linux/bpf.h, v6.12: ``BPF_ALU64 | BPF_MOV | BPF_K`` = 0xb7,
``BPF_JMP | BPF_EXIT`` = 0x95), loaded with ``BPF_PROG_LOAD`` as
``BPF_PROG_TYPE_XDP``. It is attached with an ``RTM_SETLINK`` message whose
``IFLA_XDP`` nest carries ``IFLA_XDP_FD`` and ``IFLA_XDP_FLAGS`` = 0 (the
driver's native mode where it has one; include/uapi/linux/if_link.h,
net/core/rtnetlink.c ``do_setlink``, v6.12), and read back with
``RTM_GETLINK`` (``IFLA_XDP_ATTACHED``, ``IFLA_XDP_PROG_ID``). The device
holds the program: closing the loading process's descriptor keeps it
attached, and deleting the device (or its namespace) detaches and frees it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct

from . import _net

# arch/x86/entry/syscalls/syscall_64.tbl (v6.12)
SYS_BPF = 321
# include/uapi/linux/bpf.h (v6.12)
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_XDP = 6
XDP_PASS = 2
PASS_PROGRAM = struct.pack("<BBhi", 0xB7, 0, 0, XDP_PASS) + struct.pack("<BBhi", 0x95, 0, 0, 0)

# include/uapi/linux/rtnetlink.h, netlink.h, if_link.h (v6.12)
RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK = 16, 18, 19
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
IFLA_XDP = 43
IFLA_XDP_FD, IFLA_XDP_ATTACHED, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID = 1, 2, 3, 4
XDP_ATTACHED = {0: "none", 1: "drv", 2: "skb", 3: "hw", 4: "multi"}
_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _prog_load_attr(ctypes.Structure):
    """The BPF_PROG_LOAD part of union bpf_attr up to ``prog_name`` (the kernel zero-fills the rest)."""

    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16)]


def load_pass_program(name: bytes = b"fraglife_pass") -> int:
    """Load ``r0 = XDP_PASS; exit``; returns the program's file descriptor (close it when attached)."""
    insns = ctypes.create_string_buffer(PASS_PROGRAM, len(PASS_PROGRAM))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(4096)
    attr = _prog_load_attr(prog_type=BPF_PROG_TYPE_XDP, insn_cnt=len(PASS_PROGRAM) // 8,
                           insns=ctypes.addressof(insns), license=ctypes.addressof(lic), log_level=1,
                           log_size=len(log), log_buf=ctypes.addressof(log), prog_name=name[:15])
    fd = _syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(BPF_PROG_LOAD), ctypes.byref(attr),
                  ctypes.c_uint(ctypes.sizeof(attr)))
    if fd < 0:
        e = ctypes.get_errno()
        detail = log.value.decode(errors="replace").strip()
        raise OSError(e, f"bpf(BPF_PROG_LOAD, XDP pass): {os.strerror(e)}" + (f": {detail}" if detail else ""))
    return int(fd)


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _attrs(buf: bytes):
    off = 0
    while off + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, off)
        if length < 4:
            break
        yield kind & ~NLA_F_NESTED, buf[off + 4: off + length]
        off += (length + 3) & ~3


def _request(kind: int, flags: int, ifindex: int, attrs: bytes = b"") -> list[bytes]:
    """One rtnetlink request in this thread's namespace; the payloads of the answers (raises on an error)."""
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + attrs
    seq = 1
    msg = _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.settimeout(_net.TOOL_TIMEOUT)
        s.bind((0, 0))
        s.send(msg)
        out = []
        while True:
            data = s.recv(65536)
            off = 0
            while off + _NLMSG.size <= len(data):
                length, mtype, _, mseq, _ = _NLMSG.unpack_from(data, off)
                payload = data[off + _NLMSG.size: off + length]
                off += (length + 3) & ~3
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(-err, f"rtnetlink message {kind} on ifindex {ifindex}: {os.strerror(-err)}")
                    return out
                out.append(payload)
                if not flags & NLM_F_ACK:
                    return out


def _ifindex(ifname: str) -> int:
    return socket.if_nametoindex(ifname)


def xdp_state(ifname: str) -> dict:
    """``{"attached": mode, "prog_id": id}`` of ``ifname`` in this thread's namespace (RTM_GETLINK)."""
    idx = _ifindex(ifname)
    for payload in _request(RTM_GETLINK, 0, idx):
        for kind, value in _attrs(payload[_IFINFO.size:]):
            if kind == IFLA_XDP:
                state = {"attached": "none", "prog_id": 0}
                for k, v in _attrs(value):
                    if k == IFLA_XDP_ATTACHED:
                        state["attached"] = XDP_ATTACHED.get(v[0], str(v[0]))
                    elif k == IFLA_XDP_PROG_ID:
                        state["prog_id"] = struct.unpack("=I", v[:4])[0]
                return state
    return {"attached": "none", "prog_id": 0}


def attach(ifname: str, prog_fd: int, flags: int = 0) -> dict:
    """Attach program ``prog_fd`` (-1: detach) to ``ifname`` in this thread's namespace; returns
    :func:`xdp_state` read back."""
    nest = _attr(IFLA_XDP_FD, struct.pack("=i", prog_fd)) + _attr(IFLA_XDP_FLAGS, struct.pack("=I", flags))
    _request(RTM_SETLINK, NLM_F_ACK, _ifindex(ifname), _attr(IFLA_XDP | NLA_F_NESTED, nest))
    return xdp_state(ifname)


def attach_pass(ns: str | None, ifname: str) -> dict:
    """Load the XDP_PASS program and attach it to ``ifname`` in namespace ``ns``; the device keeps it
    (gone with the device or namespace). Returns the state read back; raises OSError if it did not take."""
    fd = load_pass_program()
    try:
        state = _net.in_netns(ns, lambda: attach(ifname, fd))
    finally:
        os.close(fd)
    if state["attached"] == "none" or not state["prog_id"]:
        raise OSError(f"XDP program did not attach to {ifname}: read back {state}")
    return state
