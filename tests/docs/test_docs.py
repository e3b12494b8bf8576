"""The docs cannot rot: every code sample is a tested example DAG, or runs here against the emulator, or (marked
as needing a real licence) at least compiles; and every public name has a docstring."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.emulator import EmulatorServer

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _snippets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_snippets", REPO / "docs" / "snippets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


SNIPPETS = _snippets()
BLOCKS = [block for document in SNIPPETS.DOCUMENTS for block in SNIPPETS.python_blocks(document)]


def _ids(kind: str) -> list[Any]:
    return [pytest.param(block, id=block.where) for block in BLOCKS if block.kind == kind]


@pytest.mark.integration
@pytest.mark.parametrize("block", _ids("run"))
def test_sample_runs_against_the_emulator(block: Any, tmp_path: Path) -> None:
    """The block, as a script of its own (its imports included), with ecoinvent_default at the emulator."""
    script = tmp_path / "sample.py"
    script.write_text(block.code)
    with EmulatorServer(datasets=2000) as emulator:
        env = {**os.environ, "AIRFLOW_CONN_ECOINVENT_DEFAULT": emulator.connection_json()}
        env["ECOINVENT_OUTPUT_ROOT"] = (tmp_path / "out").as_uri()
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
        )
    assert result.returncode == 0, f"{block.where}:\n{block.code}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"


def test_compile_only_samples_compile() -> None:
    """Blocks marked as needing a real licence cannot run here; they must at least be valid Python."""
    for block in BLOCKS:
        if block.kind == "compile-only":
            compile(block.code, block.where, "exec")


def test_an_unmarked_python_block_fails_the_check(tmp_path: Path) -> None:
    document = tmp_path / "new.md"
    document.write_text("Text.\n\n```python\nprint(1)\n```\n\n<!-- sample: run -->\n```python\nprint(2)\n```\n")
    assert [block.kind for block in SNIPPETS.python_blocks(document)] == ["unmarked", "run"]
    assert [block.line for block in SNIPPETS.python_blocks(document) if block.kind == "unmarked"] == [3]


def test_every_document_has_only_tested_blocks() -> None:
    assert [block.where for block in BLOCKS if block.kind == "unmarked"] == []
    assert {"example", "run"} <= {block.kind for block in BLOCKS}


def test_samples_match_the_example_dags() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "snippets.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_have_samples() -> None:
    text = (REPO / "docs" / "operators.md").read_text()
    assert text.count("<!-- example: ") >= 4


PUBLIC_MODULES = [
    "airflow_provider_ecoinvent.hooks.ecoinvent",
    "airflow_provider_ecoinvent.hooks.async_client",
    "airflow_provider_ecoinvent.operators.ecoinvent",
    "airflow_provider_ecoinvent.sensors.ecoinvent",
    "airflow_provider_ecoinvent.triggers.ecoinvent",
    "airflow_provider_ecoinvent.exceptions",
    "airflow_provider_ecoinvent.connection",
    "airflow_provider_ecoinvent.versions",
    "airflow_provider_ecoinvent.probe.run",
    "airflow_provider_ecoinvent.probe.report",
    "airflow_provider_ecoinvent.probe.compare",
    "airflow_provider_ecoinvent.probe.expected",
    "airflow_provider_ecoinvent.pools",
    "airflow_provider_ecoinvent.records",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_classes_and_methods_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                # getdoc follows the MRO, so an override of a documented base method (execute, run) passes.
                if not inspect.getdoc(getattr(obj, attr)):
                    missing.append(f"{name}.{attr}")
    assert missing == [], f"public names without a docstring: {missing}"


# -- links between documents ----------------------------------------------------------------------------

#: A Markdown link or image target: ``[text](target)``, target without spaces (a title after it is ignored).
_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t#]*$", re.MULTILINE)
_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"(?P<name>[^\"]+)\"", re.IGNORECASE)


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped (but ``-`` and ``_``),
    each space a ``-``."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", title).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(document: Path) -> set[str]:
    """The anchors a link may name in ``document``: its headings (outside code blocks, a repeated heading
    numbered ``-1``, ``-2``... as GitHub numbers it) and explicit ``<a name=...>`` or ``id=`` anchors."""
    text = _FENCE.sub("", document.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for match in _HEADING.finditer(text):
        slug = github_slug(match["title"])
        numbered, count = slug, 0
        while numbered in anchors:
            count += 1
            numbered = f"{slug}-{count}"
        anchors.add(numbered)
    anchors.update(match["name"] for match in _ANCHOR.finditer(text))
    return anchors


def broken_links(document: Path) -> list[str]:
    """Every link of ``document`` to another file of the repository, or to an anchor in one, that does not
    resolve: ``file.md#anchor`` needs the file and a heading with that anchor, ``#anchor`` one here."""
    broken = []
    text = _FENCE.sub("", document.read_text(encoding="utf-8"))
    for match in _LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:...: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            shown = linked.relative_to(REPO) if linked.is_relative_to(REPO) else linked.name
            broken.append(f"{target}: no heading with anchor #{anchor} in {shown}")
    return broken


@pytest.mark.parametrize("document", SNIPPETS.DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_link_between_documents_resolves(document: Path) -> None:
    assert broken_links(document) == []


def test_the_link_check_finds_a_missing_anchor_and_a_missing_file(tmp_path: Path) -> None:
    heading = "## Fan-out: over `mapped` tasks!\n\n"
    (tmp_path / "other.md").write_text("# Other\n\n" + heading + heading)
    document = tmp_path / "doc.md"
    document.write_text(
        "# Title\n\n```bash\n# not a heading\n```\n\n"
        "[ok](other.md#fan-out-over-mapped-tasks) [ok](other.md#fan-out-over-mapped-tasks-1) [ok](#title) "
        "[ok](https://example.org/#x)\n"
        "[bad](other.md#fan-out-over-mapped-tasks-2) [bad](#not-a-heading) [bad](missing.md)\n"
    )
    assert broken_links(document) == [
        "other.md#fan-out-over-mapped-tasks-2: no heading with anchor #fan-out-over-mapped-tasks-2 in other.md",
        "#not-a-heading: no heading with anchor #not-a-heading in doc.md",
        "missing.md: no file missing.md",
    ]
