"""README_CN.md is a complete translation of README.md: same headings, same code blocks, same markers.

Headings: the same number, in the same order, at the same levels (the text is translated). Code blocks: the same
number, in the same order, same language, same test marker, and equal modulo comments (the rule per language is
in ``readme_blocks.py``: python token streams without comments, shell lines without ``# ...`` tails, the first
word of each line of a plain block). The CN code blocks also run: ``test_readme_examples.py`` runs both files.
"""
from __future__ import annotations

import re

import pytest

from tests.docs.readme_blocks import REPO, normalized, read

PAIRS = [("README.md", "README_CN.md"), ("doc/emulator.md", "doc/emulator_CN.md"),
         ("doc/migration.md", "doc/migration_CN.md")]


@pytest.mark.parametrize("en,cn", PAIRS)
def test_same_heading_structure(en, cn):
    en_h, _ = read(REPO / en)
    cn_h, _ = read(REPO / cn)
    assert [lvl for lvl, _ in cn_h] == [lvl for lvl, _ in en_h], (
        f"{cn} headings differ from {en}:\n"
        + "\n".join(f"{'#' * a[0] if a else '-':6} {a[1] if a else '':50} | {'#' * b[0] if b else '-':6} {b[1] if b else ''}"
                    for a, b in _zip_longest(en_h, cn_h)))


@pytest.mark.parametrize("en,cn", PAIRS)
def test_same_tables_and_lists_per_section(en, cn):
    """Each section has as many table rows and list items as its original: nothing left untranslated. A block
    generated from code (``<!-- BEGIN GENERATED ... END GENERATED -->``, e.g. doc/emulator.md's REST operations
    table) is not copied into a translation: it holds only names and is rewritten by ``make docs``."""
    a, b = _shape(REPO / en), _shape(REPO / cn)
    assert len(a) == len(b)
    diff = [(x, y) for x, y in zip(a, b) if x[1:] != y[1:]]
    assert not diff, f"{cn}: (heading, table rows, list items) differ from {en}: {diff}"


def _shape(path):
    sections, fence, generated = [], False, False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if line.startswith("<!-- BEGIN GENERATED"):
            generated = True
        if line.startswith("<!-- END GENERATED"):
            generated = False
        if fence or generated:
            continue
        if re.match(r"#{1,6} ", line):
            sections.append([line, 0, 0])
        elif sections and line.startswith("| "):
            sections[-1][1] += 1
        elif sections and line.startswith("- "):
            sections[-1][2] += 1
    return sections


@pytest.mark.parametrize("en,cn", PAIRS)
def test_same_code_blocks(en, cn):
    _, en_b = read(REPO / en)
    _, cn_b = read(REPO / cn)
    assert len(cn_b) == len(en_b), f"{cn} has {len(cn_b)} code blocks, {en} has {len(en_b)}"
    for a, b in zip(en_b, cn_b):
        assert (b.lang, b.fragment, b.name, b.isolated, b.new_device) == \
            (a.lang, a.fragment, a.name, a.isolated, a.new_device), f"{b.where} does not match {a.where} (language/marker)"
        assert normalized(b) == normalized(a), f"{b.where} differs from {a.where} beyond comments"


def test_comparison_ignores_only_comments():
    """The rule is not vacuous: a changed string or name is a difference, a translated comment is not."""
    from tests.docs.readme_blocks import Block

    base = Block("x", 1, "python", 'x = "a#b"   # say hi\nif x:\n    print(x)\n')
    assert normalized(Block("x", 1, "python", 'x = "a#b"   # 打个招呼\nif x:\n    print(x)\n')) == normalized(base)
    assert normalized(Block("x", 1, "python", 'x = "a#c"   # say hi\nif x:\n    print(x)\n')) != normalized(base)
    assert normalized(Block("x", 1, "python", 'x = "a#b"\nif x:\n  print(x)\n')) != normalized(base)
    sh = Block("x", 1, "bash", "make demo   # runs the demo\n")
    assert normalized(Block("x", 1, "bash", "make demo   # 运行示例\n")) == normalized(sh)
    assert normalized(Block("x", 1, "bash", "make test   # runs the demo\n")) != normalized(sh)


@pytest.mark.parametrize("doc", [p for pair in PAIRS for p in pair])
def test_in_page_links_resolve(doc):
    """Every ``](#anchor)`` link names a heading of the same file (GitHub's anchor rule, CJK included)."""
    text = (REPO / doc).read_text(encoding="utf-8")
    anchors = {_slug(t) for _, t in read(REPO / doc)[0]}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    broken = [a for a in links if a not in anchors]
    assert not broken, f"{doc}: links to missing headings {broken}; headings give {sorted(anchors)}"


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation (ASCII and full-width) dropped, spaces to '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def _zip_longest(a, b):
    from itertools import zip_longest

    return zip_longest(a, b)
