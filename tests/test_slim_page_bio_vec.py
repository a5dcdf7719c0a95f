"""Chapters 02 and 06 in library mode: parameters, recordings, panels, conclusions, headlines."""

from __future__ import annotations

import pytest

from fraglife import chapters, claims, probes
from fraglife.chapters import bio_vec, slim_page
from fraglife.views import bio_vec as view06, slim_page as view02

from chapter_checks import assert_cli_refuses, assert_refused, claims_listing

CH02, CH06 = chapters.get("02"), chapters.get("06")


@pytest.mark.parametrize("chapter, name, value, allowed", [
    ("02", "machine_gib", 8, "an integer in [16, 4096]"),
    ("02", "machine_gib", 8192, "an integer in [16, 4096]"),
    ("02", "mix", "server", "one of 'this_machine', 'in_use', 'anon', 'page_cache', 'page_pool'"),
    ("02", "folio_size", "1m", "one of 'measured', '4k', '16k', '64k', '2m'"),
    ("02", "working_set_mib", 1.5, "an integer in [16, 65536]"),
    ("02", "frag_kind", "slab", "one of 'folio', 'page_pool', 'net_iov'"),
    ("02", "seed", -1, "an integer in [0, 2147483647]"),
    ("02", "measurements", "cached", "one of 'live', 'recorded'"),
    ("02", "kernel", "6.6", "one of 'running', '6.12'"),
    ("06", "send_kib", 100, "a power-of-two integer in [64, 16384]"),
    ("06", "send_kib", 32768, "a power-of-two integer in [64, 16384]"),
    ("06", "thp_share", 1.5, "a number in [0, 1]"),
    ("06", "fragmentation", -0.1, "a number in [0, 1]"),
    ("06", "max_frags", 46, "an integer in [4, 45]"),
    ("06", "source", "shmem", "one of 'anon', 'page_cache'"),
    ("06", "gso_max_kib", 1024, "a power-of-two integer in [64, 512]"),
    ("06", "mss", 100, "an integer in [536, 9000]"),
    ("06", "measurements", "now", "one of 'live', 'recorded'"),
    ("06", "kernel", "6.18", "one of 'running', '6.12'"),
])
def test_bad_values_give_one_line(chapter, name, value, allowed):
    assert_refused(chapters.get(chapter).spec, name, value, allowed)


@pytest.mark.parametrize("argv, line", [
    (["run", "02", "-p", "mix", "server"], "fraglife run: parameter 'mix' = 'server' is not allowed: expected one "
     "of 'this_machine', 'in_use', 'anon', 'page_cache', 'page_pool'"),
    (["run", "06", "-p", "send_kib", "100"], "fraglife run: parameter 'send_kib' = 100 is not allowed: expected a "
     "power-of-two integer in [64, 16384]"),
])
def test_cli_refuses_a_bad_value_with_one_line(argv, line, capsys):
    assert_cli_refuses(argv, line, capsys)


def test_registry_choices_are_the_modules():
    spec = CH02.spec
    assert spec["mix"].choices == slim_page.MIXES == tuple(slim_page.MIX_CATEGORIES)
    assert spec["folio_size"].choices == tuple(slim_page.FOLIO_SIZES)
    assert spec["frag_rule"].choices == slim_page.FRAG_RULES
    assert CH06.spec["source"].choices == bio_vec.SOURCES


def test_claims_catalogue_lists_both_chapters(capsys):
    claims_listing(capsys, "02", "06")


@pytest.mark.parametrize("chapter", [CH02, CH06], ids=lambda c: c.id)
def test_recordings_alone_carry_the_chapter(chapter, recorded):
    """Without live probes (no root, no compiler) the recordings give the same analyses and claims."""
    module = chapter.module()
    R = module.Results(chapter.spec.defaults())
    assert set(R.sources.source) == {"recorded"}
    assert all("RECORDED" in n for n in R.sources.note)
    records = claims.evaluate(module.CLAIMS, R)
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
    h = module.headline(**chapter.spec.defaults())
    assert h.pop("probes") == "recorded"
    assert all(isinstance(v, (int, float)) for v in h.values())
    text = module.conclusion(R)
    assert "**" in text and "chapter 08" in text


def test_chapter_02_conclusion_quotes_its_numbers(recorded):
    R = slim_page.Results(CH02.spec.defaults())
    text = slim_page.conclusion(R)
    c, pr = R.census_stages, R.priced
    assert f"**{c.loc['today', 'total'] / (1 << 20):,.0f} MiB**" in text
    assert f"**{pr.loc['memdesc8', 'ns_per_mib']:,.0f}**" in text
    assert f"from {R.break_even_pages}-page" in text


def test_chapter_02_prices_come_from_the_probe(recorded):
    R = slim_page.Results(CH02.spec.defaults())
    assert set(R.priced.source) == {"measured here (recorded)"}
    assert (R.priced.ns_per_mib > 0).all() and (R.priced.ns_per_mib_serial >= R.priced.ns_per_mib).all()
    m = R.machine
    assert m.loc["today", "total"] == pytest.approx(CH02.spec.defaults()["machine_gib"] * (1 << 30) / 4096 * 64, rel=1e-12)


def test_chapter_06_conclusion_quotes_its_numbers(recorded):
    R = bio_vec.Results(CH06.spec.defaults())
    text = bio_vec.conclusion(R)
    r = R.rules
    for rule in ("splice", "zerocopy", "phys"):
        assert f"**{r.loc[rule, 'frags']:.0f}**" in text
    assert R.access["same_addresses"] is True


def test_chapter_06_page_cache_and_thp_sends(recorded):
    base = CH06.spec.defaults()
    thp = bio_vec.Results({**base, "thp_share": 1.0}).rules
    assert thp.loc["zerocopy", "frags"] < thp.loc["splice", "frags"]  # folio runs of 2 MiB folios
    pc = bio_vec.Results({**base, "source": "page_cache", "send_kib": 16384})
    assert pc.composed["pieces"] == {"page cache": 16384 // 64}
    frag = bio_vec.Results({**base, "fragmentation": 1.0}).composed["pieces"]
    assert frag["anon 4 KiB, fragmented"] == 1024 // 64 and frag["anon 4 KiB, fresh"] == 0


def _send_with(kc, *, share: float, skbs: bool) -> dict:
    """kcount_copy's recorded copy-path transfer with a ``share`` more frags and, if ``skbs``, as many GSO skbs
    more, the payload the same."""
    run = next(r for r in kc.data["frags"] if r["sender"] == "send")
    frags = round(share * run["mean_frags"] * run["skbs"])
    skbs = frags if skbs else 0
    lin = run.get("linear_bytes_mean", 0.0)
    payload = (run["mean_len"] - lin) * run["skbs"]
    n = run["skbs"] + skbs
    gso = dict(run["gso_size"])
    mss = max(gso, key=int)
    gso[mss] += skbs
    return {**run, "skbs": n, "mean_frags": (run["mean_frags"] * run["skbs"] + frags) / n,
            "mean_len": payload / n + lin, "skbs_per_mib": n / (run["bytes"] / 2**20), "gso_size": gso}


@pytest.mark.parametrize("share, skbs, reason", [
    (1 / 3, True, "cut"), (1 / 3, False, "shifted"), (1.0, False, ""),
], ids=["cut", "page_frag-shifted", "placed-otherwise"])
def test_chapter_06_names_a_mechanism_only_where_the_counts_show_it(recorded, share, skbs, reason):
    """More frags than the model's take bytes per frag past the rule. As many skbs more (TCP cut them) name the cut;
    a third more frags and no more skbs lie within calls starting half a page_frag page in, which names the
    page_frag's offset; twice the frags lie past that, and the row stays unexplained and the claim fails."""
    from types import SimpleNamespace

    kc, pm = probes.run("kcount_copy"), probes.run("pagemap")
    fake = SimpleNamespace(data={**kc.data, "frags": [_send_with(kc, share=share, skbs=skbs)]}, source=kc.source)
    t = bio_vec.kernel_rows(fake, pm)
    r = t.set_index("quantity").loc["bytes_per_frag"]
    assert r.agrees is not None and not r.agrees and r.kernel < r.model
    assert r.reason == {"cut": bio_vec.CUT_FRAGS, "shifted": bio_vec.PFRAG_SHIFTED, "": ""}[reason]
    assert bio_vec.compare.follows(t, kc.source)[0] is bool(reason)


@pytest.mark.parametrize("chapter, view, change", [
    (CH02, view02, {"mix": "anon", "folio_size": "4k"}),
    (CH06, view06, {"thp_share": 0.5, "gso_max_kib": 512}),
], ids=["02", "06"])
def test_panel_follows_its_controls(chapter, view, change, recorded):
    from fraglife.views import widgets

    module = chapter.module()
    P = chapter.spec.defaults()
    panel = widgets.panel(view.controls(chapter.spec, P), lambda **c: view.panel(module.panel_data(P, **c)))
    assert panel.renders == 1 and panel.error is None
    before = [o["data"].get("text/plain") for o in panel.outputs]
    panel.set(**change)
    assert panel.error is None and panel.renders == 1 + len(change)
    assert [o["data"].get("text/plain") for o in panel.outputs] != before
    assert "Interactive in JupyterLab" in panel.static_text


def test_memdesc_mixes_and_folio_sizes(recorded):
    base = CH02.spec.defaults()
    anon4k = slim_page.Results({**base, "mix": "anon", "folio_size": "4k"}).machine
    assert anon4k.loc["8 B", "total"] > anon4k.loc["today", "total"]  # order-0 folios cost more
    thp = slim_page.Results({**base, "mix": "anon", "folio_size": "2m"}).machine
    assert thp.loc["8 B", "total"] < thp.loc["32 B", "total"] < thp.loc["today", "total"]
    niov = slim_page.Results({**base, "frag_kind": "net_iov"}).priced
    assert niov.ns_per_mib.nunique() == 1  # net_iov: the same walk in every layout, the same price


def test_combined_source():
    class R:
        def __init__(self, s):
            self.source = s
    assert probes.combined_source({"a": R("live"), "b": R("live")}) == "live"
    assert probes.combined_source([R("live"), R("recorded")]) == "mixed"
