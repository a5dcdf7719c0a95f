"""Thin ctypes wrappers for the system calls the probes need (x86_64 Linux).

Only what the Python standard library lacks is wrapped here: anonymous
mappings at a known address with ``madvise``, ``vmsplice``,
``process_vm_readv``, raw ``io_uring_setup``/``io_uring_register``,
``setns`` (``os.setns`` arrives in Python 3.12) and ``statfs`` for the
filesystem type. ``os.splice``, ``os.sendfile`` and ``fcntl.F_SETPIPE_SZ``
come from the standard library.

Constants are the x86_64 UAPI values; each names its header (torvalds/linux,
v6.12).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import tempfile
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
HUGE = 2 << 20  # PMD size on x86_64; /sys/kernel/mm/transparent_hugepage/hpage_pmd_size

# include/uapi/asm-generic/mman-common.h (v6.12)
PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
MADV_DONTNEED = 4
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_POPULATE_WRITE = 23

# arch/x86/entry/syscalls/syscall_64.tbl (v6.12)
SYS_IO_URING_SETUP = 425
SYS_IO_URING_REGISTER = 427

# include/uapi/linux/io_uring.h (v6.12): enum io_uring_register_op
IORING_REGISTER_BUFFERS = 0
IORING_UNREGISTER_BUFFERS = 1

# include/uapi/linux/fs.h / splice.h (v6.12)
SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8

# include/uapi/linux/sched.h (v6.12)
CLONE_NEWNET = 0x40000000

# include/uapi/linux/magic.h (v6.12)
FS_MAGIC = {
    0xEF53: "ext4",  # EXT4_SUPER_MAGIC (shared with ext2/ext3)
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0xF2F52010: "f2fs",
    0x01021994: "tmpfs",
    0x858458F6: "ramfs",
    0x794C7630: "overlayfs",
    0x9FA0: "proc",
    0x62656572: "sysfs",
}
#: Filesystems whose O_DIRECT read builds bios from the user's pages, which pins them (v6.12:
#: fs/iomap/direct-io.c iomap_dio_bio_iter -> block/bio.c bio_iov_iter_get_pages). Others are
#: skipped: tmpfs serves O_DIRECT from its page cache, overlayfs hands it to a backing file on
#: an unknown filesystem, network filesystems take references.
BLOCK_DIRECT_IO_FS = {"ext4", "xfs", "btrfs", "f2fs"}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_munmap = _libc.munmap
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_madvise = _libc.madvise
_madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_vmsplice = _libc.vmsplice
_vmsplice.restype = ctypes.c_ssize_t
_vmsplice.argtypes = [ctypes.c_int, ctypes.POINTER(iovec), ctypes.c_size_t, ctypes.c_uint]
_pvr = _libc.process_vm_readv
_pvr.restype = ctypes.c_ssize_t
_pvr.argtypes = [ctypes.c_int, ctypes.POINTER(iovec), ctypes.c_ulong,
                 ctypes.POINTER(iovec), ctypes.c_ulong, ctypes.c_ulong]
_setns = _libc.setns
_setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


class Mapping:
    """An anonymous private mapping of ``size`` bytes starting at a multiple of ``align``.

    ``thp`` = True asks for transparent huge pages (``MADV_HUGEPAGE``), False
    forbids them (``MADV_NOHUGEPAGE``), None leaves the system default.
    Use as a context manager; :meth:`array` views must not outlive it.
    """

    def __init__(self, size: int, align: int = PAGE, thp: bool | None = False):
        if size <= 0 or size % PAGE:
            raise ValueError(f"mapping size must be a positive multiple of {PAGE}, got {size}")
        self.size = size
        raw_len = size + align
        raw = _mmap(None, raw_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if raw is None or raw == ctypes.c_void_p(-1).value:
            e = ctypes.get_errno()
            raise OSError(e, f"mmap({raw_len}): {os.strerror(e)}")
        addr = (raw + align - 1) // align * align
        if addr > raw:
            _munmap(raw, addr - raw)
        end = raw + raw_len
        if end > addr + size:
            _munmap(addr + size, end - (addr + size))
        self.addr = addr
        self.thp = thp
        if thp is True:
            self.madvise(MADV_HUGEPAGE)
        elif thp is False:
            self.madvise(MADV_NOHUGEPAGE)

    def madvise(self, advice: int, offset: int = 0, length: int | None = None) -> None:
        length = self.size - offset if length is None else length
        if _madvise(self.addr + offset, length, advice) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"madvise({advice}): {os.strerror(e)}")

    def array(self):
        """A writable numpy uint8 view of the mapping (valid until close)."""
        import numpy as np

        return np.ctypeslib.as_array((ctypes.c_uint8 * self.size).from_address(self.addr))

    def iov(self, offset: int = 0, length: int | None = None) -> iovec:
        return iovec(self.addr + offset, self.size - offset if length is None else length)

    def close(self) -> None:
        if self.addr:
            _munmap(self.addr, self.size)
            self.addr = 0

    def __enter__(self) -> "Mapping":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def thp_fraction(m: Mapping) -> float:
    """Fraction of a mapping backed by PMD-sized THPs (``AnonHugePages`` of its VMA in
    /proc/self/smaps; the mapping must be a VMA of its own, which a fresh mmap with its own
    madvise usually is)."""
    start = f"{m.addr:x}-"
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if "-" in head and not line[0].isupper():
                inside = line.startswith(start)
            elif inside and line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024 / m.size
    return 0.0


def vmsplice(fd: int, iovs: list[iovec], flags: int = 0) -> int:
    arr = (iovec * len(iovs))(*iovs)
    return _check(_vmsplice(fd, arr, len(iovs), flags), "vmsplice")


def process_vm_readv(pid: int, local: list[iovec], remote: list[iovec]) -> int:
    la = (iovec * len(local))(*local)
    ra = (iovec * len(remote))(*remote)
    return _check(_pvr(pid, la, len(local), ra, len(remote), 0), "process_vm_readv")


class io_uring_params(ctypes.Structure):
    """struct io_uring_params, include/uapi/linux/io_uring.h (v6.12): 120 bytes."""

    _fields_ = [("sq_entries", ctypes.c_uint32), ("cq_entries", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("sq_thread_cpu", ctypes.c_uint32),
                ("sq_thread_idle", ctypes.c_uint32), ("features", ctypes.c_uint32),
                ("wq_fd", ctypes.c_uint32), ("resv", ctypes.c_uint32 * 3),
                ("sq_off", ctypes.c_uint8 * 40), ("cq_off", ctypes.c_uint8 * 40)]


def io_uring_setup(entries: int = 4) -> int:
    """A ring fd; the rings are never mmap'd (buffer registration needs none)."""
    p = io_uring_params()
    return _check(_syscall(ctypes.c_long(SYS_IO_URING_SETUP), ctypes.c_uint(entries), ctypes.byref(p)),
                  "io_uring_setup")


def io_uring_register_buffers(ring_fd: int, iovs: list[iovec]) -> None:
    arr = (iovec * len(iovs))(*iovs)
    _check(_syscall(ctypes.c_long(SYS_IO_URING_REGISTER), ctypes.c_int(ring_fd),
                    ctypes.c_uint(IORING_REGISTER_BUFFERS), arr, ctypes.c_uint(len(iovs))),
           "io_uring_register(IORING_REGISTER_BUFFERS)")


def io_uring_unregister_buffers(ring_fd: int) -> None:
    _check(_syscall(ctypes.c_long(SYS_IO_URING_REGISTER), ctypes.c_int(ring_fd),
                    ctypes.c_uint(IORING_UNREGISTER_BUFFERS), None, ctypes.c_uint(0)),
           "io_uring_register(IORING_UNREGISTER_BUFFERS)")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if _setns(fd, nstype) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


class _statfs(ctypes.Structure):
    # struct statfs (glibc, x86_64): f_type comes first, as a long.
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]


_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_statfs)]


def fs_type(path: str | os.PathLike) -> str:
    """The filesystem type of ``path`` by its statfs magic (e.g. "ext4", "tmpfs")."""
    buf = _statfs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"statfs({path}): {os.strerror(e)}")
    magic = buf.f_type & 0xFFFFFFFF
    return FS_MAGIC.get(magic, f"0x{magic:x}")


def direct_io_dir(candidates: list[str | os.PathLike] | None = None) -> tuple[Path, str]:
    """The first writable directory on a filesystem where O_DIRECT reaches a block device
    (:data:`BLOCK_DIRECT_IO_FS`); by default $FRAGLIFE_DIRECT_IO_DIR, /var/tmp, the temporary
    directory, then home."""
    if candidates is None:
        candidates = [os.environ.get("FRAGLIFE_DIRECT_IO_DIR"), "/var/tmp", tempfile.gettempdir(),
                      str(Path.home())]
    tried = []
    for c in candidates:
        if not c:
            continue
        p = Path(c)
        try:
            kind = fs_type(p)
        except OSError as e:
            tried.append(f"{p}: {e.strerror}")
            continue
        if kind not in BLOCK_DIRECT_IO_FS:
            tried.append(f"{p}: {kind}")
            continue
        if not os.access(p, os.W_OK):
            tried.append(f"{p}: not writable")
            continue
        return p, kind
    raise OSError(errno.ENOENT, "no writable directory on a block-device filesystem (" + "; ".join(tried) + ")")


# -- children that die with their parent; the thread's own faults ------------------------------
#
# Knobs a probe changes are put back through :mod:`._cleanup` (its ledger survives a SIGKILL).

MTHP = "/sys/kernel/mm/transparent_hugepage"

# include/uapi/linux/prctl.h (v6.12)
PR_SET_PDEATHSIG = 1
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def die_with_parent(parent: int) -> None:
    """In a forked child: SIGKILL when the parent dies (PR_SET_PDEATHSIG), and leave now if it
    already has (the child was reparented before the call)."""
    import signal

    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def thread_minflt() -> int:
    """The calling thread's minor faults so far (``getrusage(RUSAGE_THREAD)``), those taken inside GUP
    on its behalf included (mm/memory.c ``mm_account_fault()``, v6.18)."""
    import resource

    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
