"""Keep the code samples of the docs identical to the tested example DAGs.

A sample in a Markdown file is announced by ``<!-- example: example_dags/FILE.py#NAME -->`` on the line
before its fenced ``python`` block; the block must equal the region between ``# [START NAME]`` and
``# [END NAME]`` of that file, dedented. ``python docs/snippets.py`` checks every sample (the test suite
runs it); ``python docs/snippets.py --write`` rewrites the samples from the DAGs (``make docs``).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_SAMPLE = re.compile(
    r"(?P<marker><!-- example: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n)```python\n(?P<code>.*?)```", re.DOTALL
)


def region(path: str, name: str) -> str:
    """The dedented lines between ``# [START name]`` and ``# [END name]`` of ``path``."""
    text = (REPO / path).read_text()
    match = re.search(rf"^[ \t]*# \[START {name}\]\n(.*?)^[ \t]*# \[END {name}\]", text, re.DOTALL | re.MULTILINE)
    if match is None:
        raise SystemExit(f"{path}: no region named {name!r}")
    return textwrap.dedent(match.group(1))


def sync(document: Path, write: bool) -> list[str]:
    """Check (or rewrite) the samples of one document; return the names of stale samples."""
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the samples from the example DAGs")
    args = parser.parse_args()
    stale = [name for document in DOCUMENTS for name in sync(document, args.write)]
    if stale and not args.write:
        print("Samples out of date with the example DAGs (run `make docs`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
