"""Rendered id lists: read fast as JSON (or as a Python literal), and refused clearly beyond a size.

A rendered 2-million-id list (17 MB of text) used to be read by ``ast.literal_eval``: seconds and about 2 GB
before the cost guard could refuse it. The before/after figures are in the issue 22 report, not asserted here.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_ecoinvent.exceptions import EcoinventConfigError
from airflow_provider_ecoinvent.operators._arguments import MAX_RENDERED_LIST_CHARS, parse_id_list
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer


def rendered(count: int) -> str:
    """What Jinja renders an XCom list of ``count`` ids to (a Python list's text)."""
    return str(list(range(10_000_001, 10_000_001 + count)))


@pytest.mark.parametrize("argument", ["dataset_ids", "indicator_ids"])
def test_a_two_million_id_rendering_is_refused_before_any_call_naming_the_limit_and_the_way_out(
    ecoinvent_conn: EmulatorServer, tmp_path: Path, argument: str
) -> None:
    kwargs: dict[str, Any] = {"dataset_ids": [1], "indicator_ids": [1], argument: "{{ ti.xcom_pull('pick') }}"}
    operator = EcoinventDatasetsOperator(task_id="ingest", output_uri=f"file://{tmp_path}/out.jsonl", **kwargs)
    setattr(operator, argument, rendered(2_000_000))  # 20 MB of text
    with pytest.raises(EcoinventConfigError) as raised:
        operator.execute({})  # type: ignore[arg-type]
    message = str(raised.value)
    assert re.match(rf"{argument} rendered to 20,000,000 characters of text", message), message[:100]
    assert f"more than the {MAX_RENDERED_LIST_CHARS:,} read from a template" in message
    assert f"{argument}=pick.output" in message
    assert "render_template_as_native_obj=True" in message
    assert "query / search_filters" in message
    assert len(message) < 600  # the text itself is not copied into the error
    stats = ecoinvent_conn.stats()
    assert (stats["token_requests"], stats["api_calls"]) == (0, 0)
    assert not any(tmp_path.iterdir())


def test_a_rendering_just_within_the_limit_is_read_in_full() -> None:
    text = rendered(MAX_RENDERED_LIST_CHARS // 10)
    text = text[: text.rindex(",", 0, MAX_RENDERED_LIST_CHARS - 1)] + "]"
    assert len(text) <= MAX_RENDERED_LIST_CHARS
    assert parse_id_list(text, "dataset_ids") == ast.literal_eval(text)
    with pytest.raises(EcoinventConfigError, match="rendered to 1,048,577 characters"):
        parse_id_list(text[:-1] + "," + " " * (MAX_RENDERED_LIST_CHARS - 1 - len(text)) + "1]", "dataset_ids")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2, 3]", [1, 2, 3]),
        ("  [1,2,3]\n", [1, 2, 3]),
        ("[1, 2, 3,]", [1, 2, 3]),
        ("(1, 2)", [1, 2]),
        ("1, 2", [1, 2]),
        ("7", [7]),
        ("", []),
        ("[]", []),
        ("[1.5]", [1.5]),
        ("['1']", ["1"]),
        ('["1"]', ["1"]),
    ],
    ids=[
        "json",
        "spaces",
        "trailing-comma",
        "tuple",
        "bare-tuple",
        "one-id",
        "empty",
        "empty-list",
        "float",
        "py-str",
        "json-str",
    ],
)
def test_every_form_read_before_is_read_the_same(text: str, expected: list[Any]) -> None:
    assert parse_id_list(text, "dataset_ids") == expected


@pytest.mark.parametrize("text", ["1, 2, x", "steel", "[" * 100_000, "{'a': 1}", "[1, 2"])
def test_unreadable_renderings_are_refused(text: str) -> None:
    with pytest.raises(EcoinventConfigError, match="dataset_ids must be a list of integers"):
        parse_id_list(text, "dataset_ids")


def test_an_oversized_indicators_rendering_is_refused_before_any_call_naming_the_limit(
    ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    """A templated ``indicators`` is bounded like ``dataset_ids``: its text is never read beyond the limit."""
    operator = EcoinventDatasetsOperator(
        task_id="ingest",
        dataset_ids=[1],
        indicators="{{ ti.xcom_pull('pick') }}",
        output_uri=f"file://{tmp_path}/out.jsonl",
    )
    selector = "EF v3.1 | climate change | global warming potential (GWP100)"
    text = str([selector] * (MAX_RENDERED_LIST_CHARS // len(selector)))  # valid selectors, just over the limit
    assert len(text) > MAX_RENDERED_LIST_CHARS
    operator.indicators = text
    with pytest.raises(EcoinventConfigError) as raised:
        operator.execute({})  # type: ignore[arg-type]
    message = str(raised.value)
    assert re.match(rf"indicators rendered to {len(text):,} characters of text", message), message[:100]
    assert f"more than the {MAX_RENDERED_LIST_CHARS:,} read from a template" in message
    assert "indicators=pick.output" in message
    assert len(message) < 600
    stats = ecoinvent_conn.stats()
    assert (stats["token_requests"], stats["api_calls"]) == (0, 0)
    assert not any(tmp_path.iterdir())
