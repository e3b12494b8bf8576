"""EcoinventOperator (any endpoint) inside real task execution against the emulator."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_ecoinvent.emulator import EmulatorServer


def test_endpoints_to_xcom_to_file_paginated_and_refused(
    dag_runner: Callable[..., Any], ecoinvent_conn: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "market.jsonl"
    result = dag_runner(
        f"""
        EcoinventOperator(task_id="versions", endpoint="versions")
        EcoinventOperator(
            task_id="batch", endpoint="datasets/batch", method="post", query={{"limit": 3, "version": "3.11"}},
            body={{"dataset_ids": [3, 1, 2, 3], "indicator_ids": [1]}},
        )
        EcoinventOperator(task_id="indicators", endpoint="indicators", paginate=True, query={{"limit": 7}})
        EcoinventOperator(
            task_id="search_to_file", endpoint="/datasets", paginate=True,
            query={{"query": "{{{{ params.q }}}}", "version": "3.11"}}, output_uri="file://{out}",
        )
        EcoinventOperator(task_id="too_big", endpoint="datasets", query={{"limit": 100}}, max_xcom_bytes=10_000)
        EcoinventOperator(
            task_id="too_big_paged", endpoint="datasets", paginate=True, query={{"query": "market"}},
            max_xcom_bytes=10_000,
        )
        """,
        params={"q": "market"},
    ).run()
    assert result.states == {
        "versions": "success",
        "batch": "success",
        "indicators": "success",
        "search_to_file": "success",
        "too_big": "failed",
        "too_big_paged": "failed",
    }, result.errors

    assert {item["version"] for item in result.xcom["versions"]["results"]} == {"3.9", "3.10", "3.11"}
    assert result.xcom["batch"]["total"] == 3
    assert [d["id"] for d in result.xcom["batch"]["datasets"]] == [1, 2, 3]
    indicators = result.xcom["indicators"]
    assert len(indicators) == len({i["id"] for i in indicators}) > 7

    manifest = result.xcom["search_to_file"]
    lines = out.read_bytes().splitlines(keepends=True)
    total = manifest["record_count"]
    assert total == len(lines) > 300
    assert manifest["pages"] == math.ceil(total / 100)
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert all(
        line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for line in lines[:5]
    )

    for task in ("too_big", "too_big_paged"):
        message = result.errors[task]["message"]
        assert "more than max_xcom_bytes=10000" in message
        assert "Set output_uri" in message
    requests = ecoinvent_conn.stats()["requests"]
    # The refused paginated call stopped fetching once over the limit: one page, not four.
    assert requests["GET /datasets"] == math.ceil(total / 100) + 1 + 1
    assert requests["GET /indicators"] == math.ceil(len(indicators) / 7)
