"""Read the fenced code blocks and headings of a markdown file, and compare them modulo comments.

Markers (HTML comments, invisible on GitHub) on the line right before an opening fence say how the README
tests treat the block:

* ``<!-- fragment -->`` -- not meant to run on its own (it needs names the README does not define, such as
  ``auth_of(i)``); it is only compiled.
* ``<!-- example: NAME -->`` -- runs, and the test asserts the effect registered for ``NAME``.
* ``<!-- example: NAME isolated -->`` -- runs in a copy of the session namespace, so the names it binds
  (``auth``, ``device``...) do not replace the ones later blocks use (an alternative set-up, e.g. X.509).
* ``<!-- example: NAME new-device -->`` -- for this block only, ``auth`` and ``device`` are those of another
  registered device, built as in "Device initialization" but not connected and without listeners (the block
  connects it); afterwards they are restored, and the other names the block defines stay in the session.

A python block without a marker runs in the session and is only required not to raise.

Equality "modulo comments" (README.md vs README_CN.md, which may translate comments, never code):

* ``python``: the token streams without ``COMMENT``/``NL`` tokens are equal (strings, including ``#`` inside
  them, are compared exactly);
* ``bash``/``sh``: each line without its ``  # comment`` tail (a ``#`` after whitespace) is equal;
* a block without a language (e.g. the repository layout): the first word of each line is equal (the rest is
  a description that is translated);
* any other language: the text is equal.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(fragment|example:\s*([\w-]+)(\s+(?:isolated|new-device))?)\s*-->\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


@dataclass
class Block:
    """One fenced code block: ``line`` is the 1-based line of its first code line."""

    path: str
    line: int
    lang: str
    code: str
    fragment: bool = False
    name: Optional[str] = None
    isolated: bool = False
    new_device: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def read(path: Path) -> Tuple[List[Tuple[int, str]], List[Block]]:
    """``(headings, blocks)`` of a markdown file; headings are ``(level, text)``, outside code blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    headings: List[Tuple[int, str]] = []
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m:
            fence, lang = m.group(2), m.group(3).lower()
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != fence:
                j += 1
            if j == len(lines):
                raise ValueError(f"{path.name}:{i + 1}: code block never closed")
            block = Block(path.name, start + 1, lang, "\n".join(lines[start:j]) + "\n")
            k = i - 1
            marker = _MARKER.match(lines[k].strip()) if k >= 0 else None
            if marker:
                block.fragment = marker.group(1) == "fragment"
                block.name = marker.group(2)
                block.isolated = (marker.group(3) or "").strip() == "isolated"
                block.new_device = (marker.group(3) or "").strip() == "new-device"
            blocks.append(block)
            i = j + 1
            continue
        h = _HEADING.match(lines[i])
        if h:
            headings.append((len(h.group(1)), h.group(2)))
        i += 1
    return headings, blocks


def python_blocks(path: Path) -> List[Block]:
    return [b for b in read(path)[1] if b.lang == "python"]


def normalized(block: Block) -> object:
    """The part of a block that translations must keep identical (see the module docstring)."""
    if block.lang == "python":
        toks = tokenize.generate_tokens(io.StringIO(block.code).readline)
        return [(t.type, t.string) for t in toks
                if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.ENDMARKER)] + _indents(block.code)
    if block.lang in ("bash", "sh", "shell", "console"):
        return [re.sub(r"(^|\s+)#.*$", "", ln).rstrip() for ln in block.code.splitlines()]
    if block.lang == "":
        return [ln.split()[0] if ln.split() else "" for ln in block.code.splitlines()]
    return block.code


def _indents(code: str) -> List[Tuple[str, int]]:
    """Indentation of each code line (comments may be translated, the structure may not)."""
    out = []
    for ln in code.splitlines():
        if ln.strip() and not ln.lstrip().startswith("#"):
            out.append(("indent", len(ln) - len(ln.lstrip())))
    return out
