"""Mutation run: break each promise the provider makes and check that the test suite notices.

Each mutation replaces one exact snippet of the package (it must occur exactly once, so a mutation that no
longer applies fails loudly instead of passing silently), runs the tests that cover it, and restores the file.
A mutation is *caught* when those tests fail. The tests run are a subset of ``make test``, so a mutation caught
here is caught by ``make test`` too.

    .venv/bin/python tools/mutations.py            # every mutation, a table at the end
    .venv/bin/python tools/mutations.py -k amask   # the mutations whose name contains "amask"

Run it by hand (``make mutations``) after touching the token cache, retries, the cost guard, output,
masking, 401 renewal or lineage; it takes a few minutes and is not part of CI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "airflow_provider_ecoinvent"


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str
    original: str
    mutant: str
    tests: tuple[str, ...]


HOOKS = ("tests/hooks", "tests/unit", "tests/triggers/test_async_client.py")
OPERATORS = ("tests/operators",)

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "token-cache-never-refreshes",
        "a token is renewed shortly before it expires",
        "        return now < self.refresh_at\n",
        "        return True\n",
        HOOKS,
    ),
    Mutation(
        "token-cache-never-reused",
        "one token request per process and client while the token is fresh",
        "        token = self._tokens.get(key)\n"
        "        if token is not None and token.is_fresh(self._clock()):\n"
        "            return token\n"
        "        with self._lock_for(key):\n"
        "            token = self._tokens.get(key)\n"
        "            if token is not None and token.is_fresh(self._clock()):\n"
        "                return token\n"
        "            token = fetch()\n",
        "        with self._lock_for(key):\n            token = fetch()\n",
        HOOKS,
    ),
    Mutation(
        "retry-after-ignored",
        "Retry-After is honoured (seconds or HTTP date), capped",
        "delay = min(requested, self.policy.retry_after_max)",
        "delay = self.policy.backoff(self.retries + 1)",
        HOOKS,
    ),
    Mutation(
        "cost-guard-datasets-off",
        "max_unique_datasets fails the task before any scored call",
        "    if dataset_limit is not None and datasets > dataset_limit:\n",
        "    if False:\n",
        OPERATORS,
    ),
    Mutation(
        "cost-guard-indicators-off",
        "max_unique_indicators fails the task before any scored call",
        "    if indicator_limit is not None and indicators > indicator_limit:\n",
        "    if False:\n",
        OPERATORS,
    ),
    Mutation(
        "output-written-in-place",
        "the destination only ever holds a complete file (write to a temporary, move on commit)",
        'self._file = self.temporary.open("wb")',
        'self._file = self.destination.open("wb")',
        OPERATORS,
    ),
    Mutation(
        "aborted-partial-kept",
        "a failed or killed attempt leaves no temporary file",
        "                    fs.rm(self.temporary.path)\n",
        "                    pass\n",
        OPERATORS,
    ),
    Mutation(
        "lease-ignored",
        "clean-up never removes a temporary file a live attempt is writing",
        "if age is None or age < self.lease_seconds:",
        "if False:",
        OPERATORS,
    ),
    Mutation(
        "sync-token-not-masked",
        "every token the hook obtains is registered with the secret masker",
        "                mask(step.value.value)\n",
        "                pass\n",
        HOOKS,
    ),
    Mutation(
        "async-token-not-masked",
        "every token the async client obtains is registered with the secret masker",
        "await _amask(step.value.value)",
        "pass",
        HOOKS,
    ),
    Mutation(
        "no-renewal-after-401",
        "a 401 gets a new token and one repeat of the call",
        "        if renewed_after_401:\n",
        "        if True:\n",
        HOOKS,
    ),
    Mutation(
        "401-token-not-invalidated",
        "the token the API rejected is dropped from the process cache",
        "self._token_cache.invalidate(self._token_key, token)",
        "pass",
        HOOKS,
    ),
    Mutation(
        "lineage-output-dropped",
        "OpenLineage facets name the output written",
        "outputs.append(Dataset(namespace=output.namespace, name=name))",
        "pass",
        OPERATORS,
    ),
    Mutation(
        "redirects-followed",
        "API calls never follow redirects (no netrc credentials, no foreign answers)",
        "allow_redirects=False",
        "allow_redirects=True",
        HOOKS,
    ),
    Mutation(
        "scrub-plain-only",
        "error text is scrubbed of every encoding of the secret",
        "    for plain in (secret, url_encoded):  # HTTP Basic encodes the url-encoded secret\n"
        "        forms |= _base64_cores(plain.encode())\n",
        "",
        HOOKS,
    ),
    Mutation(
        "paging-stops-without-total",
        "a paged answer without total is walked to its short or empty page",
        "    return count < largest\n",
        "    return True\n",
        HOOKS,
    ),
    Mutation(
        "no-decrease-on-429",
        "a 429 lowers the dataset stream's calls in flight (never below 1)",
        "        self.width = max(1, int(old * self._decrease_factor))\n",
        "        self.width = old\n",
        HOOKS,
    ),
    Mutation(
        "no-increase-after-successes",
        "the calls in flight grow back after a run of successes, up to max_in_flight",
        "        old, self.width = self.width, self.width + 1\n",
        "        old = self.width\n",
        HOOKS,
    ),
    Mutation(
        "retry-outside-the-gate",
        "a call retried after a 429 waits for a place within the lowered width",
        "    ticket = gate.enter(stopped)\n",
        "    ticket = 0\n",
        HOOKS,
    ),
    Mutation(
        "part-key-ignores-version",
        "a dataset directory part is reused only for the same version and system model",
        '        return digest({**self._scope(), "dataset_ids": list(ids)})\n',
        '        return digest({**self._scope(), "version": "", "system_model": "", "dataset_ids": list(ids)})\n',
        ("tests/operators/test_directory_reuse.py",),
    ),
    Mutation(
        "success-kept-during-refetch",
        "_SUCCESS and the manifest are withdrawn before any part is replaced",
        "        if fetch:\n            self.directory.withdraw_success()\n",
        "        if fetch:\n",
        ("tests/operators/test_directory_reuse.py",),
    ),
    Mutation(
        "token-key-ignores-secret",
        "a token cached for one client secret is never served to another (a rotated secret)",
        "return TokenKey(settings.token_url, settings.client_id, digest)",
        'return TokenKey(settings.token_url, settings.client_id, "")',
        ("tests/hooks/test_hook.py",),
    ),
    Mutation(
        "localhost-prefix-is-loopback",
        "plain http:// is allowed to this machine only, not to localhost.<anything>",
        '    if hostname.lower() == "localhost":\n',
        '    if hostname.lower().startswith("localhost"):\n',
        ("tests/unit/test_connection_settings.py",),
    ),
    # Issue 22: promises that hold where features combine.
    Mutation(
        "mapped-chunks-share-output",
        "mapped instances sharing one output_uri without shard fail before any call",
        "        if found is None or found[1] >= found[0]:\n            return",
        "        if True:\n            return",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "mapped-cross-product-uncounted",
        "expand over two arguments makes their product of instances, all counted",
        "    instances = math.prod(lengths.values())",
        "    instances = max(lengths.values())",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "file-output-into-existing-folder",
        "a single-file output naming an existing folder fails before any call",
        "    if not store_says(path.is_dir):\n        return",
        "    if True:\n        return",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "path-object-with-shard-is-a-file",
        "a path object given with shard names a dataset directory",
        "    return shard is not None\n",
        "    return False\n",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "abort-uploads-object-store-partial",
        "on_kill on object storage discards the temporary file without uploading it",
        "        if isinstance(raw, AbstractBufferedFile) and not raw.readable():",
        "        if False:",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "overwrite-retry-forgets-its-run",
        "a retry of an overwrite=True run keeps the parts its own DAG run committed",
        '"run": self.dag_run,  # an overwrite=True run',
        '"run": None,  # an overwrite=True run',
        ("tests/operators/test_directory_runs.py",),
    ),
    Mutation(
        "unchanged-always",
        "a rerun that changes something is not reported (nor withheld) as unchanged",
        '"unchanged": untouched}',
        '"unchanged": True}',
        ("tests/operators/test_directory_runs.py",),
    ),
    Mutation(
        "commit-emits-unchanged",
        "emit_unchanged=False withholds the commit step's asset event when nothing changed",
        "publish_or_withhold(self, context, kept, emit=self.emit_unchanged)",
        "publish_or_withhold(self, context, kept, emit=True)",
        ("tests/operators/test_directory_runs.py",),
    ),
    Mutation(
        "raw-scored-request-skips-cost-guard",
        "every scored datasets call through EcoinventHook.request obeys the connection's cost guard, per hook",
        "        check_endpoint(path)  # first: a query string in the path would hide ids from the count below\n"
        '        self.scored.admit_call(settings, path, options.get("query"), options.get("json"))\n',
        "        check_endpoint(path)  # first: a query string in the path would hide ids from the count below\n",
        ("tests/operators/test_cost_guard_caps.py",),
    ),
    Mutation(
        "query-string-hides-scored-ids",
        "an endpoint with a query string cannot hide scored ids from the cost guard",
        "    if _QUERY_MARKS.search(_fully_unquoted(relative)):",
        "    if False:",
        ("tests/operators/test_cost_guard_caps.py",),
    ),
    Mutation(
        "single-dataset-path-ignores-body-ids",
        "datasets/{id} counts that id plus any dataset_ids in the body",
        "datasets |= distinct_ids(parts[1])",
        "datasets = distinct_ids(parts[1])",
        ("tests/operators/test_cost_guard_caps.py",),
    ),
    Mutation(
        "probe-scored-skips-cost-guard",
        "the probe's --scored call obeys the connection's cost guard",
        "        refusal = _cost_guard_refusal(self.hook)\n",
        "        refusal = None\n",
        ("tests/operators/test_cost_guard_caps.py",),
    ),
    Mutation(
        "slice-gap-written-silently",
        "a dataset missing from one indicator slice is asked again, never written with partial scores",
        "        self._complete_slices(answers)\n",
        "",
        ("tests/operators/test_indicator_slices.py",),
    ),
    Mutation(
        "cost-guard-spends-retries",
        "a cost-guard refusal fails the task for good (no Airflow retry)",
        "class EcoinventCostGuardError(EcoinventError, AirflowFailException):",
        "class EcoinventCostGuardError(EcoinventError):",
        ("tests/operators/test_final_errors.py",),
    ),
    Mutation(
        "config-error-spends-retries",
        "a configuration error fails the task for good (no Airflow retry)",
        "class EcoinventConfigError(EcoinventError, AirflowFailException, ValueError):",
        "class EcoinventConfigError(EcoinventError, ValueError):",
        ("tests/operators/test_final_errors.py",),
    ),
    Mutation(
        "selector-category-reading-ignored",
        "'method | name' naming both an indicator and a category fails naming both readings",
        '    if isinstance(selector, str) and "category" not in wanted:',
        "    if False:",
        ("tests/hooks/test_indicators.py",),
    ),
    Mutation(
        "rendered-dict-selector-refused",
        "one dict selector rendered as text is read as that dict",
        'value.strip().startswith(("[", "{"))',
        'value.strip().startswith("[")',
        ("tests/hooks/test_indicators.py",),
    ),
    Mutation(
        "geography-no-suggestion",
        "a misspelt geography gets a did-you-mean before any search",
        "cutoff=_SUGGESTION_CUTOFF",
        "cutoff=1.0",
        ("tests/hooks/test_hook.py",),
    ),
    Mutation(
        "rate-limit-counts-attempts",
        "429s are retried within a time budget, not an attempt count",
        "        if rate_limited:\n            return self._next_rate_limited_delay(retry_after)\n",
        "        if False:\n            return self._next_rate_limited_delay(retry_after)\n",
        ("tests/unit/test_versions_and_retry.py", "tests/hooks/test_gateway_limit.py"),
    ),
    Mutation(
        "retry-after-zero-spins",
        "Retry-After: 0 still gets a jittered back-off above a floor",
        "delay = self._requested_wait(retry_after) or self.policy.rate_limit_backoff(self.rate_limited + 1)",
        "delay = self._requested_wait(retry_after) or 0.0",
        ("tests/unit/test_versions_and_retry.py", "tests/hooks/test_gateway_limit.py"),
    ),
    Mutation(
        "token-taken-before-the-gate",
        "a call takes its token once it has its place in flight, not before it queues",
        "take_token = partial(self._token_for_call, cancel)  # called by the attempt, once it has its place",
        "take_token = partial(lambda early: early, self._token_for_call(cancel))",
        ("tests/hooks/test_gateway_limit.py",),
    ),
    Mutation(
        "fresh-token-claim-untrue",
        "'refused a freshly issued token' is said only when the token was issued for this call",
        "            renewed_after_401=self._renewals > 0 and self._token_issued_for_call,\n",
        "            renewed_after_401=self._renewals > 0,\n",
        ("tests/hooks/test_one_request_path.py",),
    ),
    Mutation(
        "free-calls-bypass-the-gate",
        "every call of a hook, free ones included, waits at the hook's one gate",
        "attempt_within(gate or self.gate, ",
        "attempt_within(gate or CallGate(POOL_SIZE), ",
        ("tests/hooks/test_gateway_limit.py",),
    ),
    Mutation(
        "mapped-task-group-unchecked",
        "an operator inside an expanded task group sharing one output_uri fails before any call",
        "    if not built_by_mapping(task) and group is None:\n        return None",
        "    if not built_by_mapping(task):\n        return None",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "generic-shared-output",
        "EcoinventOperator instances mapped into one output_uri fail before any call",
        "        self._refuse_shared_output(context)\n",
        "",
        ("tests/operators/test_output_combinations.py",),
    ),
    Mutation(
        "overwrite-clear-reuses",
        "clearing a finished overwrite=True task refetches every part",
        "self._rerun_of_finished = self.overwrite and self._run_finished()",
        "self._rerun_of_finished = False",
        ("tests/operators/test_directory_runs.py",),
    ),
    Mutation(
        "selection-ignores-account",
        "fan-outs under another connection, user or organisation never share a selection",
        '        "account": digest([conn_id, user_id, organization_id]),\n',
        "",
        ("tests/operators/test_directory_runs.py",),
    ),
)


def locate(mutation: Mutation) -> Path:
    """The one module holding the snippet (searched package-wide, so moving code does not break the table)."""
    found = [
        (path, path.read_text(encoding="utf-8").count(mutation.original))
        for path in sorted(PACKAGE.rglob("*.py"))
        if mutation.original in path.read_text(encoding="utf-8")
    ]
    if len(found) != 1 or found[0][1] != 1:
        places = ", ".join(f"{path.relative_to(REPO)} x{count}" for path, count in found) or "nowhere"
        raise SystemExit(f"{mutation.name}: the snippet must occur exactly once, found {places}; update it.")
    return found[0][0]


def run(mutation: Mutation) -> tuple[bool, float, str]:
    path = locate(mutation)
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(mutation.original, mutation.mutant), encoding="utf-8")
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "2", *mutation.tests],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.write_text(original, encoding="utf-8")
    tail = [line for line in result.stdout.splitlines() if line.startswith("FAILED")][:1]
    return result.returncode != 0, time.monotonic() - started, tail[0] if tail else result.stdout.splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    args = parser.parse_args()
    selected = [m for m in MUTATIONS if args.k in m.name]
    for mutation in selected:
        locate(mutation)  # every snippet still applies, before anything runs
    rows = []
    for mutation in selected:
        caught, seconds, evidence = run(mutation)
        rows.append((mutation.name, mutation.promise, "caught" if caught else "SURVIVED", f"{seconds:.0f} s", evidence))
        print(f"{rows[-1][2]:8} {mutation.name}: {evidence}", flush=True)
    print()
    print("| mutation | promise broken | result | time | first failing test |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[2] == "caught" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
