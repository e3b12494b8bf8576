"""Section 6, behaviour half: what the http-provider ingestion cannot do, shown against the emulator.

The timing and call counts of the same ingestion are in sections 1 and 2 (same run, same emulator). Here
each case installs one fault rule on the second batch call of a small ingestion and runs the http-provider
variant and the hook (``get_datasets``) against it:

* 429 with ``Retry-After: 1`` (rate limiting, contract section 6);
* 503 once (a transient server error);
* the token revoked mid-run (an expired token answered with 401).

Masking is checked with Airflow's own secrets masker: is the access token redacted in log text afterwards?
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import clients
from benchmarks._common import attempt_under_fault

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.control import EmulatorProcess

FAULTS: dict[str, dict[str, Any]] = {
    "429 + Retry-After: 1": {"kind": "status", "status": 429, "retry_after": "1"},
    "503 once": {"kind": "status", "status": 503},
    "token revoked mid-run (401)": {"kind": "revoke"},
}


def _is_masked(secret: str) -> bool:
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    return secret not in str(redact(f"Authorization: Bearer {secret}"))


def run(emulator: EmulatorProcess, n: int, version: str) -> dict[str, Any]:
    ids = list(range(1, n + 1))
    indicators = [1, 2, 3]
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ecoinvent-bench-alt-") as folder:
        out = Path(folder)
        variants: dict[str, Callable[[], clients.RunResult]] = {
            "http provider (HttpHook)": lambda: clients.http_provider_ingest(ids, indicators, version, out / "h.jsonl"),
            "ours (hook get_datasets)": lambda: clients.hook_fetch(ids, indicators),
        }
        for label, fault in FAULTS.items():
            row: dict[str, Any] = {"fault": label}
            for name, call in variants.items():
                emulator.reset()
                options = {key: value for key, value in fault.items() if key != "kind"}
                emulator.add_fault(fault["kind"], path="/datasets/batch", after=1, count=1, **options)
                row[name] = attempt_under_fault(call, n)
            cases.append(row)
        emulator.reset()
        http_token = clients.http_provider_token()
        clients.hook_fetch(ids[:1], indicators)
    from airflow_provider_ecoinvent._client.tokens import TOKEN_CACHE
    from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook

    hook_token = EcoinventHook(clients.ECOINVENT_CONN_ID).get_access_token()
    TOKEN_CACHE.clear()
    return {
        "datasets": n,
        "faults": cases,
        "token_masked_in_logs": {
            "http provider (hand-written token task)": _is_masked(http_token),
            "ours": _is_masked(hook_token),
        },
        "cannot_do": [
            "No retry by default: HttpHook.run raises AirflowException on 429/5xx; run_with_advanced_retry "
            "(tenacity) retries only with user-written arguments and never reads Retry-After.",
            "No token life-cycle: a token that expires or is revoked mid-run fails the task (401); there is no "
            "renew-once-and-repeat.",
            "No paging helper for POST /datasets/batch: slicing ids into 100s, from/limit and total are user code; "
            "HttpOperator's pagination_function keeps every response in memory and returns them all to XCom.",
            "No masking of the access token unless the user calls mask_secret; a token task's return value "
            "goes to XCom (metadata database) in clear.",
            "No version pinning ('latest' resolved once), no cost guard, no atomic output, no concurrency limit.",
        ],
    }
