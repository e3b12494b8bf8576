"""The example DAGs on a production-shaped deployment: CeleryExecutor with two workers, PostgreSQL, Redis, S3."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

INGEST_DAG = "ecoinvent_ingest_datasets"


def test_ingestion_example_writes_to_s3(cluster: Cluster) -> None:
    before = cluster.emulator.stats(include_ids=True)
    run_id = cluster.trigger(INGEST_DAG)
    cluster.wait_for_run(INGEST_DAG, run_id)

    keys = [k for k in cluster.list_keys("out/scored/") if run_id.replace(":", "_").replace("+", "_") in k]
    assert len(keys) == 1, cluster.list_keys()
    records = [json.loads(line) for line in cluster.read_key(keys[0]).splitlines() if line.strip()]
    after = cluster.emulator.stats(include_ids=True)
    print(before["usage"], after["usage"])
    assert records
