"""Section 7: the peer a data team would pick instead, the same ingestion written with dlt.

:func:`dlt_ingest` is written the way dlt's documentation teaches it: a ``RESTClient`` with
``OAuth2ClientCredentials`` auth, one ``paginate`` per 100 ids over ``POST /datasets/batch`` with an
``OffsetPaginator`` on ``from``/``limit``/``total``, yielded from a ``@dlt.resource``, and a pipeline
whose ``filesystem`` destination (``bucket_url`` a ``file://`` folder) writes JSON Lines. dlt's defaults
are kept, as a data team would keep them: its requests session retries 429 and 5xx (honouring
``Retry-After``), and its normaliser unnests lists (``impact_scores``, ``sectors``) into child tables.
Telemetry and dlt's Airflow-Variables secrets provider are switched off (see ``DLT_ENV``), and each run
gets a fresh working folder, so runs do not share state.

Timing: the operator (``max_in_flight=1``, as in section 2), the bare loop writing ``json.dumps`` lines and
the dlt pipeline run interleaved round-robin against the same emulator; calls come from the emulator's
ledger (read and reset after each run, outside the timed region: the last run of each variant is shown).
Faults: the same three as section 6, on the second batch call.

dlt is in the optional ``bench`` extra (and the ``test`` extra, for the smoke run of this section).
"""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks import clients
from benchmarks._common import PAGE_LIMIT, SYSTEM_MODEL, attempt_under_fault, interleave, paired_ratio, summary

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

#: dlt reads its configuration from the environment: no telemetry (no network here), quiet logs, and no
#: Airflow Variables as a secrets provider (dlt enables it whenever Airflow is importable; the benchmark's
#: throw-away Airflow has no metadata database, so every config lookup would log a failed query).
DLT_ENV: Final = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
    "PROVIDERS__ENABLE_AIRFLOW_SECRETS": "false",
}

FAULTS: Final[dict[str, dict[str, Any]]] = {
    "429 + Retry-After: 1": {"kind": "status", "status": 429, "retry_after": "1"},
    "503 once": {"kind": "status", "status": 503},
    "token revoked mid-run (401)": {"kind": "revoke"},
}


def dlt_ingest(
    emulator: EmulatorProcess, ids: Sequence[int], indicator_ids: Sequence[int], version: str, folder: Path
) -> clients.RunResult:
    """Ingest ``ids`` scored for ``indicator_ids`` with a dlt pipeline into JSON Lines under ``folder``."""
    os.environ.update(DLT_ENV)
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

    auth = OAuth2ClientCredentials(
        access_token_url=emulator.token_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
    )
    client = RESTClient(base_url=emulator.api_url, auth=auth)
    indicators = list(indicator_ids)

    @dlt.resource(name="datasets", write_disposition="replace")
    def datasets() -> Iterator[Any]:
        for start in range(0, len(ids), PAGE_LIMIT):
            chunk = list(ids[start : start + PAGE_LIMIT])
            yield from client.paginate(
                "/datasets/batch",
                method="POST",
                params={"version": version, "system_model": SYSTEM_MODEL},
                json={"dataset_ids": chunk, "indicator_ids": indicators},
                paginator=OffsetPaginator(
                    limit=PAGE_LIMIT, offset_param="from", limit_param="limit", total_path="total"
                ),
                data_selector="datasets",
            )

    pipeline = dlt.pipeline(
        pipeline_name="ecoinvent_bench",
        pipelines_dir=str(folder / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(folder / "lake").as_uri()),
        dataset_name="ecoinvent",
    )
    pipeline.run(datasets(), loader_file_format="jsonl")
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("datasets", 0)
    return clients.RunResult(int(rows))


def _fresh_folder(root: Path, name: str) -> Path:
    """A new, empty folder per run: a dlt pipeline keeps state in its working folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    return folder


def _ledger_calls(emulator: EmulatorProcess, result: clients.RunResult) -> dict[str, Any]:
    """What the emulator counted since its last reset, for a run that returned ``result``."""
    stats = emulator.stats()
    return {
        "datasets": result.datasets,
        "batch_calls": stats["requests"].get("POST /datasets/batch", 0),
        "versions_calls": stats["requests"].get("GET /versions", 0),
        "token_requests": stats["token_requests"],
        "connections": stats["connections_opened"],
    }


def run(emulator: EmulatorProcess, n: int, repeats: int, indicators: int, version: str, fault_n: int) -> dict[str, Any]:
    ids = list(range(1, n + 1))
    indicator_ids = list(range(1, indicators + 1))
    bare = clients.BareClient(emulator, version)
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-dlt-") as root_name:
        root = Path(root_name)
        variants: dict[str, Callable[[], clients.RunResult]] = {
            "operator": partial(clients.operator_ingest, ids, indicator_ids, root / "op.jsonl", max_in_flight=1),
            "bare+write": partial(bare.fetch, ids, indicator_ids, root / "bare.jsonl"),
            "dlt": lambda: dlt_ingest(emulator, ids, indicator_ids, version, _fresh_folder(root, "dlt")),
        }
        short: list[str] = []
        calls: dict[str, dict[str, Any]] = {}

        def check(name: str, result: clients.RunResult) -> None:
            """Outside the timed region: the run's calls from the ledger, then a reset for the next run."""
            if result.datasets != n:
                short.append(f"{name}: {result.datasets} of {n} datasets")
            calls[name] = _ledger_calls(emulator, result)
            emulator.reset()

        emulator.reset()
        timings = interleave(variants, repeats, after_each=check)
        if short:
            raise RuntimeError("incomplete ingestion: " + "; ".join(short))
        faults = _faults(emulator, fault_n, indicator_ids, version, root)
    emulator.reset()
    operator_vs_dlt = paired_ratio(timings["operator"], timings["dlt"])
    return {
        "target": "operator wall < the dlt pipeline's, sequential (issue 16)",
        "met": operator_vs_dlt < 1.0,
        "datasets": n,
        "indicators": indicators,
        "rounds": repeats,
        "variants": {name: summary(t) for name, t in timings.items()},
        "calls": calls,
        "ratios": {
            "dlt/bare+write wall": paired_ratio(timings["dlt"], timings["bare+write"]),
            "operator/dlt wall": operator_vs_dlt,
            "dlt/bare+write client cpu": paired_ratio(timings["dlt"], timings["bare+write"], "cpu"),
            "operator/dlt client cpu": paired_ratio(timings["operator"], timings["dlt"], "cpu"),
        },
        "faults_datasets": fault_n,
        "faults": faults,
        "method": (
            "dlt RESTClient + OAuth2ClientCredentials + OffsetPaginator over POST /datasets/batch, one "
            "paginate per 100 ids, a @dlt.resource run by a pipeline into the filesystem destination "
            "(file://, JSON Lines), dlt defaults otherwise (its retrying requests session, nested lists "
            "unnested into child tables); interleaved with the operator (max_in_flight=1) and bare+write."
        ),
    }


def _faults(
    emulator: EmulatorProcess, n: int, indicator_ids: list[int], version: str, root: Path
) -> list[dict[str, Any]]:
    ids = list(range(1, n + 1))
    variants: dict[str, Callable[[], clients.RunResult]] = {
        "dlt (RESTClient)": lambda: dlt_ingest(emulator, ids, indicator_ids, version, _fresh_folder(root, "f")),
        "ours (hook get_datasets)": lambda: clients.hook_fetch(ids, indicator_ids),
    }
    cases: list[dict[str, Any]] = []
    for label, fault in FAULTS.items():
        row: dict[str, Any] = {"fault": label}
        for name, call in variants.items():
            emulator.reset()
            options = {key: value for key, value in fault.items() if key != "kind"}
            emulator.add_fault(fault["kind"], path="/datasets/batch", after=1, count=1, **options)
            row[name] = attempt_under_fault(call, n, root_cause=True)
            row[name]["batch_calls"] = emulator.stats()["requests"].get("POST /datasets/batch", 0)
        cases.append(row)
    return cases
