"""Which kernel the model follows: the rules that changed between 6.12 LTS and the kernel that runs here.

The model states today's kernel. Most rules it follows read the same in v6.12 and v6.18; the
ones below do not. Each row names the release it changed in, the behaviour before and after,
and where each is written (v6.12: Debian's linux-source-6.12 6.12.118, paths as in
torvalds/linux; v6.18: the v6.18.0 tree; commits by SHA, list threads by Message-ID). A model
asks :func:`follows` whether a kernel has a rule's new behaviour, so the same replay runs "as on
6.18" or "as on 6.12 LTS".

A kernel is named by its release string (``uname -r``, or the ``kernel`` a recording was made
on); major.minor decides, except for a rule a stable series took as a backport (``backports``: the
series and the first release of it known to have the rule; a bare "6.12" is the series as released).
:data:`LTS` is the long-term kernel chapters set beside the running one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LTS = "6.12"
#: The oldest and newest releases whose rules the model was read against.
OLDEST, NEWEST = "6.12", "6.18"


@dataclass(frozen=True)
class VersionedRule:
    name: str
    changed_in: str  # the first release with the new behaviour ("6.15")
    before: str
    after: str
    cite_before: str
    cite_after: str
    chapters: tuple[str, ...]  # the chapters whose numbers it moves
    #: (series, first release of that series known to have the new behaviour, how that is known)
    backports: tuple[tuple[str, str, str], ...] = ()


VERSIONED_RULES: tuple[VersionedRule, ...] = (
    VersionedRule(
        "cow_reuse_large_anon", "6.15",
        "a write to a write-protected PTE of a large anon folio always copies one page",
        "reused when no other mm maps the folio, more than one of its pages is mapped and its "
        "refcount equals its mapcount (an in-flight GUP ref on any of its pages forces the copy)",
        "mm/memory.c wp_can_reuse_anon_folio() (v6.12)",
        "mm/memory.c __wp_can_reuse_large_anon_folio() (v6.18); commits 6af8cb80d3a9, 1da190f4d0a6, "
        "<20250224165603.1434404-1-david@redhat.com>",
        ("03",)),
    VersionedRule(
        "folio_256", "6.15",
        "struct folio is 192 B: hugetlb fields overlay page[2]",
        "struct folio is 256 B: hugetlb fields in page[3] (also backported to 6.12.y stable, "
        "so late 6.12 releases have it)",
        "include/linux/mm_types.h struct folio (early v6.12)",
        "commit 4eeec8c89a0c; 6.12.y backport a1f784f1c334; size from the running kernel's BTF",
        ("02",),
        (("6.12", "6.12.118", "Debian's linux-source-6.12 6.12.118 has the hugetlb fields in page[3] "
          "(backport a1f784f1c334); the first 6.12.y with it is not checked"),)),
    VersionedRule(
        "page_frag_cache_file", "6.13",
        "page_frag in mm/page_alloc.c, offsets counted down",
        "page_frag in mm/page_frag_cache.c, offsets ascending; same atomics (one per refill, one per "
        "page_frag_free())",
        "mm/page_alloc.c __page_frag_alloc_align() (v6.12)",
        "mm/page_frag_cache.c (v6.18); commits 65941f10caf2, 8218f62c9c9b",
        ("07",)),
    VersionedRule(
        "rxrpc_separate_header", "6.14",
        "rxrpc's wire header sits inside the spliced txbuf",
        "a separate page_frag'd wire header per transmission, kept out of the spliced buffer "
        "(its comment cites delayed corruption with zerocopy)",
        "net/rxrpc/txbuf.c (v6.12)",
        "net/rxrpc/txbuf.c, output.c rxrpc_send_data_packet() (v6.18); commit 06ea2c9c4163",
        ("07",)),
    VersionedRule(
        "pipe_two_spare_pages", "6.15",
        "an anonymous pipe keeps one spare page (tmp_page)",
        "two spare pages (tmp_page[2], anon_pipe_put_page())",
        "fs/pipe.c anon_pipe_buf_release() (v6.12)",
        "fs/pipe.c anon_pipe_put_page() (v6.18); commit 46af8e2406c2",
        ("05",)),
    VersionedRule(
        "ext4_large_folios", "6.16",
        "ext4 regular files are cached in order-0 folios",
        "ext4 regular files get large folios (the write size on buffered writes, a readahead ramp "
        "on reads), unless data=journal, verity or encryption",
        "fs/ext4/inode.c (v6.12: no mapping folio order)",
        "fs/ext4/inode.c ext4_should_enable_large_folio() (v6.18); commit 7ac67301e82f",
        ("05",)),
    VersionedRule(
        "frag_ref_get_netmem", "6.16",
        "__skb_frag_ref() is an inline get_page(); no devmem TX",
        "__skb_frag_ref() calls get_netmem(): get_page() for pages, a binding refcount_inc() per frag "
        "ref for devmem net_iovs; devmem TX takes one binding ref per sendmsg",
        "include/linux/skbuff_ref.h (v6.12)",
        "net/core/skbuff.c get_netmem(), net/core/devmem.c net_devmem_get_net_iov() (v6.18); "
        "<20250425204743.617260-3-almasrymina@google.com>; commit bd61848900bf",
        ("01", "08")),
    VersionedRule(
        "devmem_binding_free_deferred", "6.16",
        "the binding is freed synchronously at its last put (RX only)",
        "the last put queues the unmap and free on a workqueue (unbind_w)",
        "net/core/devmem.h net_devmem_dmabuf_binding_put() (v6.12)",
        "net/core/devmem.h net_devmem_dmabuf_binding_put(), __net_devmem_dmabuf_binding_free() (v6.18)",
        ("08",)),
    VersionedRule(
        "tsq_paced_flows", "6.16",
        "paced flows are exempt from tcp_limit_output_bytes; default 1 MiB",
        "every flow is capped by TSQ; default 4 MiB",
        "net/ipv4/tcp_output.c tcp_small_queue_check() (v6.12)",
        "commits c4221a8cc3a7, 9ea3bfa61b09",
        ("01", "05")),
    VersionedRule(
        "netmem_desc", "6.17",
        "net_iov is 48 B and the page_pool fields live only in struct page",
        "struct netmem_desc (48 B) mirrors the page_pool fields; net_iov is 64 B",
        "include/net/netmem.h (v6.12)",
        "include/net/netmem.h (v6.18); commit f3d85c9ee510; <20250721021835.63939-1-byungchul@sk.com>",
        ("02",)),
    VersionedRule(
        "huge_zero_pmd_special", "6.18",
        "the huge zero PMD is an ordinary leaf: gup-fast grabs the huge zero folio",
        "the huge zero PMD is special: gup-fast refuses it and the slow path references it",
        "mm/huge_memory.c set_huge_zero_folio() (v6.12)",
        "mm/huge_memory.c set_huge_zero_folio() (v6.18); commit d82d09e48219",
        ("04",)),
    VersionedRule(
        "huge_zero_wp_thp", "6.13",
        "a write fault on the huge zero PMD splits it: the PTEs map the zero page and each write then "
        "allocates an order-0 page",
        "a write fault on the huge zero PMD allocates a THP and maps it by the PMD (order-0 pages only if "
        "that allocation fails)",
        "mm/huge_memory.c do_huge_pmd_wp_page(): is_huge_zero_pmd() -> fallback (v6.12)",
        "mm/huge_memory.c do_huge_zero_wp_pmd() (v6.18); commit 1ced09e0331f, series "
        "<20240916094309.1226908-1-dev.jain@arm.com> (release from the series' timing; tag not checked)",
        ("04",)),
    VersionedRule(
        "skb_defer_lockless", "6.18",
        "per-CPU defer list under a spinlock: a full list (defer_count >= skb_defer_max, read first) frees "
        "locally with no atomic, else one spin_lock_bh() per skb deferred; the IPI when the count before it is "
        "half the maximum; the flush takes the lock",
        "per-CPU, per-NUMA-node lockless lists: atomic_long_inc_return() of the count on every call (a full list, "
        "count >= skb_defer_max, still pays it and frees locally) and llist_add() per skb deferred: two atomics; "
        "the IPI when count - 1 is half the maximum; the flush is one llist_del_all(); UDP also defers its frees",
        "net/core/skbuff.c skb_attempt_defer_free() (v6.12)",
        "net/core/skbuff.c skb_attempt_defer_free() (v6.18); commits 9c94ae6bb0b2, 844c9db7f7f5, "
        "5628f3fe3b16",
        ("01", "08")),
    VersionedRule(
        "dma_map_phys", "6.18",
        "dma_map_page_attrs() maps a page",
        "dma_map_phys() maps a physical address and dma_map_page_attrs() wraps it; "
        "skb_frag_dma_map() still maps pages",
        "kernel/dma/mapping.c (v6.12)",
        "kernel/dma/mapping.c, include/linux/skbuff.h __skb_frag_dma_map() (v6.18); commit f7326196a781",
        ("06",)),
)

_BY_NAME = {r.name: r for r in VERSIONED_RULES}
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def version(release: str) -> tuple[int, int]:
    """(major, minor) of a release string: "6.18.44-fc-v1252" -> (6, 18). ValueError if it has none."""
    return release_tuple(release)[:2]


def release_tuple(release: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a release string: "6.12.118-1~deb12u1" -> (6, 12, 118); "6.12" -> (6, 12, 0)."""
    m = _VERSION.match(str(release).strip())
    if not m:
        raise ValueError(f"{release!r} is not a kernel release (expected major.minor...)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def series(release: str) -> str:
    """"6.18.44-fc-v1252" -> "6.18"."""
    major, minor = version(release)
    return f"{major}.{minor}"


def rule(name: str) -> VersionedRule:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no versioned rule {name!r}: expected one of {', '.join(_BY_NAME)}") from None


def follows(release: str, name: str) -> bool:
    """Whether a kernel of ``release`` has the new behaviour of rule ``name`` (its own release, or a backport to
    its stable series at or after the release known to carry it)."""
    r = rule(name)
    if version(release) >= version(r.changed_in):
        return True
    full = release_tuple(release)
    return any(version(series) == full[:2] and full >= release_tuple(first) for series, first, _ in r.backports)


def differences(a: str, b: str) -> list[VersionedRule]:
    """The rules one of the two kernels has and the other has not."""
    return [r for r in VERSIONED_RULES if follows(a, r.name) != follows(b, r.name)]


def within_reading(release: str) -> bool:
    """Whether the model's rules were read against a kernel this close: OLDEST <= release, and no newer
    than NEWEST (a later kernel may have changed a rule the table does not know)."""
    return version(OLDEST) <= version(release) <= version(NEWEST)
