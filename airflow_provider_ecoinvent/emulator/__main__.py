"""``python -m airflow_provider_ecoinvent.emulator``: run the emulator in the foreground.

Once it accepts connections it prints three ``export KEY='value'`` lines on stdout, ready to paste into a
shell (``EmulatorProcess`` reads them to learn the port; a shell script can ``source`` them), then serves
until SIGINT or SIGTERM and exits 0. The server runs in a thread so the main thread only waits for the
signal and shuts down cleanly."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_ecoinvent.emulator.catalogue import VERSION_GAPS
from airflow_provider_ecoinvent.emulator.config import (
    ADMIN_PREFIX,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    TOKEN_PATH,
    EmulatorConfig,
)
from airflow_provider_ecoinvent.emulator.control import base_url_for, startup_lines
from airflow_provider_ecoinvent.emulator.faults import FAULT_KINDS, parse_fault_spec
from airflow_provider_ecoinvent.emulator.server import create_server, shutdown_server

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from airflow_provider_ecoinvent.emulator.server import EmulatorHTTPServer

#: The command's default port: a fixed one, so that a connection stored once (``airflow connections add``)
#: keeps reaching a restarted emulator; not Airflow's own ports (8080 for its API server, 8793/8794 for
#: log servers, 8974 for scheduler health), which a local Airflow next to the emulator is likely to hold.
DEFAULT_PORT = 8642

_DESCRIPTION = """\
A local emulator of the ecoinvent API (datasets, impact scores, indicators, versions) and of its
OAuth2 client-credentials token endpoint, with a usage ledger and scriptable faults.

Once it listens it prints three shell lines, ready to paste into a shell (or to `source`):
export ECOINVENT_EMULATOR_BASE_URL=..., export ECOINVENT_EMULATOR_TOKEN_URL=... and
export AIRFLOW_CONN_ECOINVENT_DEFAULT='<connection JSON>'; then it serves until SIGINT or SIGTERM (exit 0).
"""

_EPILOG = f"""\
fault rules (--fault, repeatable): KIND[:key=value,...] or a JSON object. Kinds: {", ".join(FAULT_KINDS)}.
  status     status=503 [detail=...] [retry_after=2]   answer with that status instead ([error=...]:
                                                      the OAuth error code on the token endpoint)
  latency    ms=250                                   delay matching requests
  hang       seconds=30                               sleep, then answer (provokes read timeouts)
  drop       [at=start] [bytes=64]                    send part of the response, then a TCP reset
  truncate   [bytes=64]                               send a body shorter than Content-Length, close
  malformed  [body=...]                               200 with a non-JSON body
  revoke                                              revoke the token this request uses (-> 401)
  omit       dataset=7 [indicator=150]                leave dataset 7 out of the answer of calls asking for
                                                      it (only those scoring indicator 150, if given)
  concurrency limit=3 [retry_after=0]                 429 to calls above 3 in flight (count: default inf)
  Every rule also takes path=SUBSTRING (default: API calls only, not the token endpoint), method=POST,
  count=N (default 1; inf = always) and after=N (skip the first N matching requests).
  Example: --fault status:status=503,path=/datasets/batch,after=2,count=3,retry_after=1

paths: token endpoint {TOKEN_PATH}; API under --api-prefix; admin (no auth) under {ADMIN_PREFIX}/
  (GET stats, POST reset, POST/GET/DELETE faults, POST revoke, POST versions, GET health).
catalogue: dataset ids 1..N in 3.11 and in published versions; {
    ", ".join(f"{name} lacks ids divisible by {modulus}" for name, modulus in VERSION_GAPS.items())
}.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command's parser; its options are added group by group, in the order ``--help`` lists them."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_ecoinvent.emulator",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_listen_options(parser, defaults)
    _add_catalogue_options(parser, defaults)
    _add_client_options(parser)
    _add_answer_shape_options(parser, defaults)
    _add_fault_options(parser, defaults)
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return parser


def _add_listen_options(parser: argparse.ArgumentParser, defaults: EmulatorConfig) -> None:
    """Where it listens, and the timing of its answers: token lifetime and added latency."""
    parser.add_argument("--host", default=defaults.host, help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to bind; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=defaults.token_ttl,
        metavar="SECONDS",
        help="lifetime of access tokens, fractions allowed; tokens really expire (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=defaults.latency_ms,
        metavar="MS",
        help="delay added to every API call, not to token or admin calls (default: %(default)s)",
    )


def _add_catalogue_options(parser: argparse.ArgumentParser, defaults: EmulatorConfig) -> None:
    """What it serves: the synthetic catalogue and the path the API lives under."""
    parser.add_argument(
        "--datasets",
        type=int,
        default=defaults.datasets,
        metavar="N",
        help="catalogue size: dataset ids 1..N in the newest version (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the synthetic catalogue and scores (default: %(default)s)",
    )
    parser.add_argument(
        "--api-prefix",
        default=defaults.api_prefix,
        metavar="PREFIX",
        help="path prefix of the API, e.g. /v0 or /v3/api1 (default: %(default)s)",
    )


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    """The OAuth clients it accepts (usage is ledgered per client)."""
    parser.add_argument(
        "--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client id accepted (default: %(default)s)"
    )
    parser.add_argument(
        "--client-secret", default=DEFAULT_CLIENT_SECRET, help="its client secret (default: %(default)s)"
    )
    parser.add_argument(
        "--extra-client",
        action="append",
        default=[],
        metavar="ID:SECRET",
        help="another accepted client, repeatable (usage is ledgered per client)",
    )


def _add_answer_shape_options(parser: argparse.ArgumentParser, defaults: EmulatorConfig) -> None:
    """How its answers differ from the contract, to try a client against a server that is not quite it."""
    parser.add_argument(
        "--versions-shape",
        choices=("object", "list"),
        default=defaults.versions_shape,
        help='GET /versions body: "object" ({"results": [...]}) or "list" (a bare list) (default: %(default)s)',
    )
    parser.add_argument(
        "--shapes",
        choices=("contract", "variant"),
        default=defaults.shapes,
        help='answer shapes: "contract", or "variant", which differs from the contract in every answer, '
        "to try the probe or a client against (default: %(default)s)",
    )
    parser.add_argument(
        "--page-cap",
        type=int,
        default=None,
        help="silently lower every 'limit' to at most this many items (a server capping page size)",
    )
    parser.add_argument(
        "--omit-total",
        action="store_true",
        help="leave 'total' out of paged answers (search, batch, indicators); clients must page without it",
    )


def _add_fault_options(parser: argparse.ArgumentParser, defaults: EmulatorConfig) -> None:
    """How it misbehaves: fault rules installed at start, and a gateway's concurrency limit."""
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:k=v,...]",
        help="a fault rule installed at start, repeatable (see below)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=defaults.max_concurrency,
        metavar="N",
        help="answer 429 to API calls above N in flight at once, as a rate-limited gateway does; "
        "token and admin calls are not limited; 0: no limit (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency-retry-after",
        default=defaults.concurrency_retry_after,
        metavar="SECONDS",
        help="the Retry-After header of those 429s (default: %(default)s)",
    )


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> EmulatorConfig:
    extra_clients = []
    for item in args.extra_client:
        client_id, sep, secret = item.partition(":")
        if not sep or not client_id:
            parser.error(f"--extra-client needs ID:SECRET, got {item!r}")
        extra_clients.append((client_id, secret))
    try:
        faults = tuple(parse_fault_spec(spec) for spec in args.fault)
        return EmulatorConfig(
            host=args.host,
            port=args.port,
            token_ttl=args.token_ttl,
            latency_ms=args.latency_ms,
            datasets=args.datasets,
            seed=args.seed,
            api_prefix=args.api_prefix,
            client_id=args.client_id,
            client_secret=args.client_secret,
            faults=faults,
            extra_clients=tuple(extra_clients),
            versions_shape=args.versions_shape,
            shapes=args.shapes,
            omit_total=args.omit_total,
            max_concurrency=args.max_concurrency,
            concurrency_retry_after=args.concurrency_retry_after,
            page_cap=args.page_cap,
            log_requests=args.log_requests,
        )
    except (ValueError, json.JSONDecodeError) as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    config = config_from_args(parser.parse_args(argv), parser)
    server = _listen(config, parser)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base_url = base_url_for(config.host, server.port)
    print("\n".join(startup_lines(config, base_url)), flush=True)
    print(f"ecoinvent API emulator serving {base_url}{config.api_prefix} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    shutdown_server(server)
    thread.join(timeout=5)
    return 0


def _listen(config: EmulatorConfig, parser: argparse.ArgumentParser) -> EmulatorHTTPServer:
    """The bound server, or exit 1 saying which address could not be bound and what to do (not a traceback)."""
    try:
        return create_server(config)
    except OSError as err:
        where = f"{config.host}:{config.port}"
        if err.errno == errno.EADDRINUSE:
            reason = (
                f"port {config.port} on {config.host} is already in use (by another emulator, or a server such as "
                "Airflow's). Stop what listens there, or choose another port: --port N, or --port 0 for any free one."
            )
        else:
            reason = f"cannot listen on {where}: {err.strerror or err}. Choose another --host or --port (0: any free)."
        parser.exit(1, f"{parser.prog}: {reason}\n")


if __name__ == "__main__":
    sys.exit(main())
