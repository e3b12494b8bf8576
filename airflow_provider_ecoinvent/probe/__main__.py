"""``python -m airflow_provider_ecoinvent.probe``: compare the real API's answers with the provider's expectations."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from airflow_provider_ecoinvent._client.constants import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

_DESCRIPTION = """\
Call the ecoinvent API with an Airflow connection and report, field by field, where its answers differ
from what this provider expects (missing or extra keys, types, paging fields, lists under other keys).

Free calls only: token, versions, indicators, one search page. --scored adds one scored call of one
dataset and one indicator, which the licence bills (1 dataset, 1 indicator). The report names keys,
types and counts, never values, the client secret or the token: it is safe to paste into a bug report.
"""

_EPILOG = """\
exit codes: 0 the answers agree; 1 differences (or a call failed); 2 could not connect or authenticate.
The connection is read as Airflow reads it: AIRFLOW_CONN_<ID> environment variable, secrets backend or
metadata database. What to do with differences: docs/probe.md.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_ecoinvent.probe",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--conn-id", default=DEFAULT_CONN_ID, help="the Airflow connection to use (default: %(default)s)"
    )
    parser.add_argument(
        "--scored",
        action="store_true",
        help="also make one scored call (one dataset from the search page, one indicator): billed",
    )
    parser.add_argument("--version", help="database version to ask for (default: the newest listed)")
    parser.add_argument("--system-model", default="cutoff", help="system model to ask for (default: %(default)s)")
    parser.add_argument("--query", help="search text of the one search page (default: none)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe, print its report on stdout, and return its exit code."""
    args = build_parser().parse_args(argv)
    report_stream = sys.stdout
    # Airflow's logging writes to the stdout it finds when it is configured, on first import: point that at
    # stderr, so that stdout carries the report alone (``--json`` output stays parseable).
    sys.stdout = sys.stderr
    try:
        from airflow_provider_ecoinvent.probe.run import run_probe

        report = run_probe(
            args.conn_id,
            scored=args.scored,
            version=args.version,
            system_model=args.system_model,
            query=args.query,
            notify=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        sys.stdout = report_stream
    report_stream.write(report.render_json() + "\n" if args.json else report.render_text())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
