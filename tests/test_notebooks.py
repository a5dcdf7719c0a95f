"""Committed chapters carry no outputs and start with a tagged parameters cell."""

import json

import nbformat
import pytest

from fraglife import chapters, runner


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.id)
def test_committed_without_outputs_and_with_parameters_cell(chapter):
    nb = nbformat.read(chapter.notebook, as_version=4)
    runner.check_notebook(chapter)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata.kernelspec.name == "fraglife"


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.id)
def test_every_cell_has_a_unique_id(chapter):
    """nbformat 4.5 requires cell ids; a missing one is a warning today and an error later."""
    raw = json.loads(chapter.notebook.read_text())
    if (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5):
        ids = [c.get("id") for c in raw["cells"]]
        assert None not in ids, f"{chapter.id}: cells without an id: {[i for i, x in enumerate(ids) if x is None]}"
        assert len(set(ids)) == len(ids), f"{chapter.id}: repeated cell ids"


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.id)
def test_validation_follows_the_parameters_cell(chapter):
    """The cell after the parameters cell hands every parameter to the library."""
    code = [c for c in nbformat.read(chapter.notebook, as_version=4).cells if c.cell_type == "code"]
    assert f'chapters.validate("{chapter.id}", globals())' in code[1].source
    declared = {line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line and not line.startswith("#")}
    assert declared == {p.name for p in chapter.spec}


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.id)
def test_code_cells_are_short(chapter):
    """Notebooks narrate and call: logic lives in chapters/name.py and views/name.py."""
    # the parameters cell is a list of literals, one per parameter, however many the chapter has
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(nbformat.read(chapter.notebook, as_version=4).cells)
            if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
            and len(c.source.strip().splitlines()) > 10]
    assert not long, f"{chapter.id}: code cells over 10 lines (cell, lines): {long}"


@pytest.mark.parametrize("chapter", chapters.CHAPTERS, ids=lambda c: c.id)
def test_setup_cell_names_the_chapters_modules(chapter):
    """The cell after the parameters imports the chapter's module (and views, if it has them) by name."""
    code = [c for c in nbformat.read(chapter.notebook, as_version=4).cells if c.cell_type == "code"]
    assert f"from fraglife.chapters import {chapter.name} as ch" in code[1].source
    if chapter.id != "00_overview":
        assert f"{chapter.name} as view" in code[1].source
