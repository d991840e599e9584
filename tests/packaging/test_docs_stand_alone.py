"""The repository's docs stand alone: no file points at reference notes that live outside the repository, and every
``doc/protocol.md §N`` citation names a section that exists."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Set

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "doc" / "protocol.md"

#: Notes the project was written from, kept outside the repository (a reader of a clone has none of them).
EXTERNAL_NOTES = ("iotda-protocol.md", "upstream-api.md", "design.md", "peers.md", "broker.md", "style.md")
_SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".hypothesis", ".pytest_cache", ".emulator-data", ".ruff_cache",
              ".mypy_cache", "node_modules"}
_TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".ini", ".cfg", ".js", ".html", ".css", ".sh", ".json", ".yml",
                  ".yaml"}
_TEXT_NAMES = {"Makefile", "run"}


def _repo_text_files() -> Iterator[Path]:
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in _SKIP_DIRS or part.startswith(".venv") or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and (path.suffix in _TEXT_SUFFIXES or path.name in _TEXT_NAMES):
            yield path


def test_no_file_refers_to_notes_outside_the_repository():
    present = {p.name for p in _repo_text_files()}
    missing = [name for name in EXTERNAL_NOTES if name not in present]
    assert "iotda-protocol.md" in missing and "upstream-api.md" in missing  # the check below is not vacuous
    offenders: List[str] = []
    for path in _repo_text_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            if "shared/spec" in line or any(re.search(r"(?<![\w/-])" + re.escape(n), line) for n in missing):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert offenders == [], "point these at doc/protocol.md or doc/migration.md:\n" + "\n".join(offenders)


def _sections() -> Dict[str, str]:
    """Section number -> heading of doc/protocol.md (``## 2.`` and ``### 2.5``)."""
    out = {}
    for line in PROTOCOL.read_text(encoding="utf-8").splitlines():
        found = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? (.+)", line)
        if found:
            out[found.group(1)] = found.group(2)
    return out


def test_protocol_reference_has_its_sections():
    sections = _sections()
    # connection, topics, events, custom topics, bootstrap, behaviour, limits, not implemented, open points
    assert [str(n) for n in range(1, 10)] == [k for k in sections if "." not in k]
    for needed in ("1.2", "1.4", "1.5", "2.1", "2.4", "2.10", "3.1", "3.6", "3.8", "5", "6.3", "6.5", "7.1"):
        assert needed in sections, needed
    text = PROTOCOL.read_text(encoding="utf-8")
    # the facts the code relies on are spelled out here
    for fact in ("`{device_id}_0_{sign_type}_{timestamp}`", "$oc/devices/{device_id}/", "`YYYYMMDDHH`",
                 "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a", "`yyyyMMdd'T'HHmmss'Z'`",
                 "What the emulator does not implement"):
        assert fact in text, fact


def test_every_citation_names_an_existing_section():
    sections: Set[str] = set(_sections())
    number = r"§?\s?\d+(?:\.\d+)?"
    cite = re.compile(r"protocol\.md`{0,2}\)?,?\s*(§\s?\d+(?:\.\d+)?(?:\s*(?:[-–,]|and)\s*" + number + r")*)")
    bad: List[str] = []
    count = 0
    for path in _repo_text_files():
        if path == PROTOCOL:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in cite.finditer(line):
                for number in re.findall(r"\d+(?:\.\d+)?", match.group(1)):
                    count += 1
                    if number not in sections:
                        bad.append(f"{path.relative_to(ROOT)}:{lineno}: §{number}")
    assert count > 30, f"only {count} citations found: the pattern no longer matches how files cite doc/protocol.md"
    assert bad == [], "citations of sections doc/protocol.md does not have:\n" + "\n".join(bad)
