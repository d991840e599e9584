"""Regenerates the "REST operations" table of doc/emulator.md from the emulator's route table.

Every operation of IoTDA's v5 application API, as the official application SDK (``huaweicloudsdkiotda``, a dev
requirement) names them, is matched against the emulator's tornado routes: an operation is implemented when a
route matches its path and that route's handler implements its HTTP method. The table therefore cannot go
stale: ``make docs`` rewrites it and ``tests/emulator_http/test_api_catalog.py`` fails when it differs.

Usage: ``python doc/gen_emulator_api.py`` (rewrites doc/emulator.md in place), or ``--check``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import tornado.web

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "doc" / "emulator.md"
BEGIN = "<!-- BEGIN GENERATED: rest-operations (doc/gen_emulator_api.py; run `make docs`) -->"
END = "<!-- END GENERATED: rest-operations -->"
YES, NO = "\u2713", "\u2014"

_HTTP_INFO = re.compile(r'def _(\w+)_http_info\(cls, request\):\s*http_info = \{\s*"method": "(\w+)",\s*'
                        r'"resource_path": "([^"]+)"')


def sdk_operations() -> List[Tuple[str, str, str]]:
    """(operation name in CamelCase, HTTP method, path template) of every v5 IoTDA operation, sorted by path."""
    import huaweicloudsdkiotda.v5.iotda_client as client_module

    source = Path(client_module.__file__).read_text(encoding="utf-8")
    ops = []
    for snake, method, path in _HTTP_INFO.findall(source):
        name = "".join(part.capitalize() for part in snake.split("_"))
        ops.append((name, method, path))
    return sorted(set(ops), key=lambda o: (o[2], o[1]))


def _route_table() -> List[Tuple["re.Pattern[str]", type]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from types import SimpleNamespace

    from iotda_emulator.http import rest

    server = SimpleNamespace(emulator=None)   # the routes only keep it for their handlers; nothing runs here
    return [(re.compile(pattern + "$"), handler) for pattern, handler, *_ in rest.routes(server)]


def implemented(method: str, path: str, table: List[Tuple["re.Pattern[str]", type]]) -> bool:
    """True when a route matches ``path`` (placeholders filled in) and its handler serves ``method``."""
    concrete = re.sub(r"\{[^}]+\}", "x1", path)
    for pattern, handler in table:
        if pattern.match(concrete):
            fn = getattr(handler, method.lower(), None)
            return fn is not None and fn is not getattr(tornado.web.RequestHandler, method.lower(), None)
    return False


def _group(path: str) -> str:
    rest = path.split("{project_id}/", 1)[-1]
    return rest.split("/", 1)[0]


def render() -> str:
    """The generated section (markers included)."""
    table = _route_table()
    ops = sdk_operations()
    groups: Dict[str, List[Tuple[str, str, str, bool]]] = {}
    for name, method, path in ops:
        groups.setdefault(_group(path), []).append((name, method, path, implemented(method, path, table)))
    done = sum(1 for rows in groups.values() for r in rows if r[3])
    lines = [BEGIN, "",
             f"{done} of the {len(ops)} v5 operations of the official application SDK (`huaweicloudsdkiotda`) are "
             "implemented. Operations are grouped by their first path segment; \u2713 = implemented, "
             "\u2014 = answered with APIG's `404 APIGW.0101`.", ""]
    for group in sorted(groups, key=lambda g: (-sum(r[3] for r in groups[g]), g)):
        rows = groups[group]
        lines.append(f"<details><summary><code>{group}</code>: {sum(r[3] for r in rows)} of {len(rows)}"
                     "</summary>")
        lines.append("")
        lines.append("| operation | method | path | emulator |")
        lines.append("|---|---|---|---|")
        for name, method, path, ok in rows:
            lines.append(f"| {name} | {method} | `{path.replace('/v5/iot/{project_id}', '')}` | "
                         f"{YES if ok else NO} |")
        lines.append("")
        lines.append("</details>")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def updated_doc() -> str:
    """doc/emulator.md with the generated section replaced (or appended when it is missing)."""
    text = DOC.read_text(encoding="utf-8")
    section = render()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + section + tail
    return text.rstrip("\n") + "\n\n## REST operations\n\n" + section + "\n"


def main(argv: List[str]) -> int:
    new = updated_doc()
    if "--check" in argv:
        if new != DOC.read_text(encoding="utf-8"):
            print("doc/emulator.md's REST operations table is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
