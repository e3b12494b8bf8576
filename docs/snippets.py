"""Every Python sample of the docs is tested: cut from a tested example DAG, or run, or (marked) compiled.

Each fenced ``python`` block of README.md and docs/*.md is announced by a marker on the line before it:

* ``<!-- example: example_dags/FILE.py#NAME -->``: the block must equal the region between
  ``# [START NAME]`` and ``# [END NAME]`` of that file, dedented. The example DAGs run in the test suite.
* ``<!-- sample: run -->``: tests/docs/test_docs.py runs the block as a script of its own (so it must carry
  its imports) with ``ecoinvent_default`` pointing at the bundled emulator.
* ``<!-- sample: compile-only: REASON -->``: the block cannot run on its own (REASON, e.g. it needs a real
  ecoinvent licence); the test suite checks that it at least compiles.

A block without a marker fails the check. ``python docs/snippets.py`` checks every document (the test
suite runs it); ``python docs/snippets.py --write`` rewrites the example samples from the DAGs (``make docs``).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_SAMPLE = re.compile(
    r"(?P<marker><!-- example: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n)```python\n(?P<code>.*?)```", re.DOTALL
)
#: Any fenced python block, with the line before it (where its marker belongs).
_BLOCK = re.compile(r"(?:^(?P<before>[^\n]*)\n)?^```python\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"^<!-- (?:example: \S+#[\w-]+|sample: run|sample: compile-only: (?P<reason>[^>]+?)) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced python block of a document and how it is tested."""

    document: Path
    line: int
    kind: str  # "example", "run", "compile-only" or "unmarked"
    code: str

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def python_blocks(document: Path) -> list[Block]:
    """Every fenced python block of ``document``, classified by the marker on the line before it."""
    text = document.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        before = (match["before"] or "").strip()
        marker = _MARKER.match(before)
        kind = "unmarked"
        if marker is not None:
            kind = "example" if "example:" in before else "compile-only" if marker["reason"] else "run"
        line = text.count("\n", 0, match.start("code"))
        blocks.append(Block(document, line, kind, match["code"]))
    return blocks


def region(path: str, name: str) -> str:
    """The dedented lines between ``# [START name]`` and ``# [END name]`` of ``path``, without trailing blank
    lines (ruff format may put one before the END marker; a sample must not end with one)."""
    text = (REPO / path).read_text()
    match = re.search(rf"^[ \t]*# \[START {name}\]\n(.*?)^[ \t]*# \[END {name}\]", text, re.DOTALL | re.MULTILINE)
    if match is None:
        raise SystemExit(f"{path}: no region named {name!r}")
    return textwrap.dedent(match.group(1)).rstrip("\n") + "\n"  # blank lines before the END marker dropped


def sync(document: Path, write: bool) -> list[str]:
    """Check (or rewrite) the example samples of one document; return the names of stale samples."""
    stale: list[str] = []

    def replace(match: re.Match[str]) -> str:
        expected = region(match["path"], match["name"])
        if match["code"] != expected:
            stale.append(f"{document.relative_to(REPO)}: {match['path']}#{match['name']}")
        return f"{match['marker']}```python\n{expected}```"

    text = document.read_text()
    updated = _SAMPLE.sub(replace, text)
    if write and updated != text:
        document.write_text(updated)
    return stale


def unmarked(document: Path) -> list[str]:
    """Where ``document`` has a python block that no test would run."""
    return [block.where for block in python_blocks(document) if block.kind == "unmarked"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the samples from the example DAGs")
    args = parser.parse_args()
    failed = 0
    stale = [name for document in DOCUMENTS for name in sync(document, args.write)]
    if stale and not args.write:
        print("Samples out of date with the example DAGs (run `make docs`):", *stale, sep="\n  ")
        failed = 1
    untested = [where for document in DOCUMENTS for where in unmarked(document)]
    if untested:
        print(
            "Python blocks without a marker (<!-- example: FILE#NAME -->, <!-- sample: run --> or "
            "<!-- sample: compile-only: REASON -->, see docs/snippets.py):",
            *untested,
            sep="\n  ",
        )
        failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
