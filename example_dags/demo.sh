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
echo "demo: emulator at $ECOINVENT_EMULATOR_BASE_URL"

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

# 4. What landed, and the summary the DAG logged.
output=$(find "$OUTPUT_DIR" -type f -name '*.jsonl' | head -1)
[[ -n "$output" ]] || fail "the DAG succeeded but wrote no file under $OUTPUT_DIR"
echo
echo "Output: $output ($(wc -l <"$output") records)"
echo "First records (truncated):"
head -3 "$output" | cut -c1-200
echo
grep -o "Wrote [0-9]* datasets.*" "$work/dag.log" | tail -1 || true
echo "demo: success"
