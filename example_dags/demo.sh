#!/usr/bin/env bash
# `make demo`: run the ecoinvent_ingest_datasets example DAG end to end against the bundled emulator.
# No credentials needed; everything runs on loopback; nothing is left running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
AIRFLOW="$VENV/bin/airflow"
DAG_ID=${DAG_ID:-ecoinvent_ingest_datasets}
OUTPUT_DIR=${OUTPUT_DIR:-$PWD/output/demo}

work=$(mktemp -d "${TMPDIR:-/tmp}/ecoinvent-demo.XXXXXX")
emulator_pid=""
cleanup() {
  if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo: $*" >&2; exit 1; }

# 1. The emulator, on a free loopback port. It prints `export` lines (its URLs and a ready connection), the
#    same lines a user pastes into a shell; sourcing them sets AIRFLOW_CONN_ECOINVENT_DEFAULT.
"$PY" -m airflow_provider_ecoinvent.emulator --port 0 --datasets 5000 >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 1 100); do
  grep -q '^export AIRFLOW_CONN_ECOINVENT_DEFAULT=' "$work/emulator.out" 2>/dev/null && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; fail "the emulator did not start"; }
  sleep 0.1
done
grep -q '^export AIRFLOW_CONN_ECOINVENT_DEFAULT=' "$work/emulator.out" || fail "the emulator printed no connection"
# shellcheck source=/dev/null
source "$work/emulator.out"
echo "demo: emulator at $ECOINVENT_EMULATOR_BASE_URL (pid $emulator_pid)"

# 2. A throw-away Airflow home (SQLite) that sees only the example DAGs.
export AIRFLOW_HOME="$work/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/example_dags"
export ECOINVENT_OUTPUT_ROOT="file://$OUTPUT_DIR"
rm -rf "$OUTPUT_DIR"
echo "demo: preparing a throw-away Airflow home (about 10 s)"
"$AIRFLOW" db migrate >"$work/migrate.log" 2>&1 || { tail -20 "$work/migrate.log" >&2; fail "airflow db migrate failed"; }
# The pool the example DAGs share when ECOINVENT_POOL names it (without it they use default_pool).
"$AIRFLOW" pools set ecoinvent_api 4 "ecoinvent API calls" >/dev/null 2>&1 || fail "could not create the pool"
export ECOINVENT_POOL=ecoinvent_api

# 3. The DAG, end to end.
echo "demo: running $DAG_ID with 'airflow dags test' (about 20 s)"
if ! "$AIRFLOW" dags test "$DAG_ID" >"$work/dag.log" 2>&1 || ! grep -q "state=success" "$work/dag.log" \
   || grep -q "state=failed" "$work/dag.log"; then
  grep -E "ERROR|Error|error|Traceback|state=" "$work/dag.log" | tail -30 >&2 || tail -40 "$work/dag.log" >&2
  fail "$DAG_ID did not succeed (full log above, last lines)"
fi

# 4. What landed: the first scores as a table, and the key figures of the operator's manifest (its XCom).
output=$(find "$OUTPUT_DIR" -type f -name '*.jsonl' | head -1)
[[ -n "$output" ]] || fail "the DAG succeeded but wrote no file under $OUTPUT_DIR"
echo
"$PY" - "$output" "$AIRFLOW_HOME/airflow.db" <<'SUMMARY' || fail "could not summarise $output"
"""Print the first records of the output as an aligned table, then the manifest's key figures."""
import json
import sqlite3
import sys

from airflow_provider_ecoinvent.records import flat_rows

output, database = sys.argv[1], sys.argv[2]
SHOWN_DATASETS = 4
COLUMNS = [("dataset", "dataset_id"), ("activity", "activity"), ("geography", "geography"),
           ("method", "method"), ("indicator", "indicator"), ("score", "score"), ("unit", "score_unit")]
NUMERIC = {"dataset", "score"}


def cell(value, width=38):
    text = "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


with sqlite3.connect(database) as db:
    row = db.execute(
        "SELECT value FROM xcom WHERE task_id = 'score_datasets' AND key = 'return_value' ORDER BY timestamp DESC"
    ).fetchone()
manifest = json.loads(row[0]) if row else {}

with open(output, encoding="utf-8") as lines:
    datasets = [json.loads(line) for line in lines]
rows = [
    [cell(flat[key]) for _, key in COLUMNS]
    for record in datasets[:SHOWN_DATASETS]
    for flat in flat_rows(record, manifest.get("version", ""), manifest.get("system_model", ""))
]
widths = [max(len(title), *(len(r[i]) for r in rows)) for i, (title, _) in enumerate(COLUMNS)]


def line(cells):
    return "  ".join(
        c.rjust(w) if title in NUMERIC else c.ljust(w) for c, w, (title, _) in zip(cells, widths, COLUMNS)
    ).rstrip()


print(f"First {min(SHOWN_DATASETS, len(datasets))} of {len(datasets)} datasets written, one row per indicator:")
print(line([title for title, _ in COLUMNS]))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r))
print()
if not manifest:
    print("(no manifest found in the run's XCom)")
    sys.exit(0)


def indicator_lines(manifest):
    """Each indicator scored with its method and category: a name such as "land use" alone says little."""
    named = manifest.get("indicators") or [{"id": i} for i in manifest["indicator_ids"]]
    width = max(len(str(i["id"])) for i in named) if named else 0
    return ("\n" + " " * 14).join(
        f"{i['id']:<{width}}  " + " | ".join(str(i.get(k) or "?") for k in ("method", "category", "indicator"))
        for i in named
    ) or "none"


figures = [
    ("release", f"ecoinvent {manifest['version']} / {manifest['system_model']}"),
    ("records", f"{manifest['record_count']:,} ({manifest['datasets_written']:,} datasets, "
                f"{manifest['missing_datasets']:,} requested ids missing)"),
    ("indicators", indicator_lines(manifest)),
    ("API calls", f"{manifest['api_calls']:,} (+ {manifest['token_requests']:,} token requests)"),
    ("file", f"{manifest['output_uri']}"),
    ("size", f"{manifest['bytes']:,} bytes, sha256 {manifest['sha256'][:16]}..."),
    ("took", f"{manifest['elapsed_seconds']:.1f} s"),
]
print("Manifest:")
for name, value in figures:
    print(f"  {name:<11} {value}")
SUMMARY
echo
grep -o "Wrote [0-9]* datasets.*" "$work/dag.log" | tail -1 || true
# Warnings the tasks, the provider or Airflow's secret masker logged are shown, not buried in the log.
if grep -E '\[warning.*\[(airflow\.task|airflow_provider_ecoinvent|airflow\.sdk\._shared\.secrets_masker)' \
   "$work/dag.log" >"$work/warnings.log"; then
  echo "demo: the tasks logged these warnings:"
  cut -c1-220 "$work/warnings.log"
fi
echo "demo: success"
