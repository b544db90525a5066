"""The ``tacore`` command: thin argument parsing over the process entry points."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from tacore import __version__
from tacore.auth import commands as keys_commands
from tacore.childprocess import name_process
from tacore.errors import ConfigError
from tacore.settings import Settings, load_settings
from tacore.signals import stop_event_on_signals


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from tacore.logconfig import configure_logging
    from tacore.service import Service

    name_process("serve")
    if args.workers is not None and args.workers < 0:
        print("tacore serve: --workers must be 0 or more", file=sys.stderr)
        return 2
    configure_logging(settings, "serve")
    stop = stop_event_on_signals()
    Service(settings, data_agent=not args.no_data_agent, api=not args.no_api, demo=args.demo,
            workers=args.workers, flows=not args.no_flows, orders=not args.no_orders).run(stop)
    return 0


def _call(settings: Settings, args: argparse.Namespace) -> int:
    from clients import LazyPirateClient, RequestTimeout
    from tacore.auth.credentials import client_keys

    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        print(f"tacore call: params are not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print("tacore call: params must be a JSON object", file=sys.stderr)
        return 2
    endpoint = args.endpoint or settings.client_endpoint
    refused = nothing_listening(endpoint)
    if refused is not None:
        print(f"tacore call: no TACore service answered at {endpoint}: nothing is listening there ({refused}). "
              "Start one with `tacore serve`, or name the right one with --endpoint (or ZMQ_FRONTEND_PORT).",
              file=sys.stderr)
        return 3
    with LazyPirateClient(endpoint, timeout_ms=args.timeout_ms, retries=args.retries, internal=args.internal,
                          curve=client_keys(settings)) as client:
        try:
            reply = client.request(args.method, params, priority=args.priority, deadline_ms=args.deadline_ms)
        except RequestTimeout:
            attempts = args.retries + 1
            print(f"tacore call: no TACore service answered at {endpoint}: something accepts connections there but "
                  f"sent no reply to {args.method} in {attempts} attempt(s) of {args.timeout_ms:.0f} ms. Is it a "
                  "TACore broker's client port (ZMQ_FRONTEND_PORT), and is it overloaded?", file=sys.stderr)
            return 3
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0 if reply.get("status") == "success" else 1


def nothing_listening(endpoint: str, timeout_s: float = 1.0) -> str | None:
    """Why nothing can answer at a ``tcp://HOST:PORT`` endpoint (e.g. "connection refused"), or None.

    ZeroMQ connects lazily and retries forever, so a call to an endpoint where nothing listens would
    only time out; one plain TCP connect first tells the user at once what is wrong.
    """
    if not endpoint.startswith("tcp://"):
        return None
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("*", "0.0.0.0"):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer to a TCP connect in {timeout_s:.0f} s"
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from tacore.auth.credentials import worker_keys
    from tacore.logconfig import configure_logging
    from workers.pool import WorkerPool

    update: dict[str, Any] = {}
    if args.connect:
        update["broker_connect"] = args.connect
    if args.count:
        update["worker_count"] = args.count
    settings = settings.model_copy(update=update)
    name_process("worker pool")
    worker_keys(settings)  # a missing or bad key stops here, not in every worker process
    configure_logging(settings, "workers")
    stop = stop_event_on_signals()
    prefix = args.prefix if args.prefix is not None else f"{socket.gethostname()}-w"
    WorkerPool(settings, prefix=prefix).run(stop)
    return 0


def _worker_health(settings: Settings, args: argparse.Namespace) -> int:
    """0 when every worker of this host heard the broker lately (WORKER_ALIVE_DIR), else 1: a healthcheck."""
    from pathlib import Path

    from workers.alive import check

    directory = args.dir or settings.worker_alive_dir
    if directory is None:
        print("tacore worker-health: set WORKER_ALIVE_DIR (for `tacore worker` too) or pass --dir", file=sys.stderr)
        return 2
    max_age_s = settings.heartbeat_interval_ms * (settings.heartbeat_liveness + 1) / 1000.0
    report = check(Path(directory), max_age_s)
    print("\n".join(report.lines), file=sys.stdout if report.healthy else sys.stderr)
    return 0 if report.healthy else 1


def _broker(settings: Settings, args: argparse.Namespace) -> int:
    from tacore import heap
    from tacore.broker import Broker
    from tacore.broker.refusals import raise_descriptor_limit
    from tacore.logconfig import configure_logging
    from workers.pool import load_registry

    name_process("broker")
    configure_logging(settings, "broker")
    raise_descriptor_limit()
    stop = stop_event_on_signals()
    broker = Broker(settings, expected_methods=frozenset(load_registry(settings.worker_registry).names()),
                    ship_records=not args.no_request_log)
    heap.settle()
    broker.run(stop)
    return 0


def _data_agent(settings: Settings, args: argparse.Namespace) -> int:
    from workers.ingest.agent import run

    name_process("data-agent")
    run(settings)
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from tacore.api.server import run

    name_process("sidecar")
    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tacore", description="TACore trading-agent core service")
    parser.add_argument("--version", action="version", version=f"tacore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the whole service: broker, workers, data agent, sidecar")
    serve.add_argument("--demo", action="store_true",
                       help="also run the exchange simulator and stream a few symbols from it")
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes here (default WORKER_COUNT; 0: only workers that join from elsewhere)")
    serve.add_argument("--no-data-agent", action="store_true", help="do not start the data agent")
    serve.add_argument("--no-api", action="store_true", help="do not start the monitoring sidecar")
    serve.add_argument("--no-flows", action="store_true", help="do not start the flow scheduler")
    serve.add_argument("--no-orders", action="store_true", help="do not start the order process")
    serve.set_defaults(func=_serve)

    call = sub.add_parser("call", help="send one request and print the reply")
    call.add_argument("method")
    call.add_argument("params", nargs="?", default="{}", help="JSON object")
    call.add_argument("--endpoint", help="broker frontend (default from settings)")
    call.add_argument("--timeout-ms", type=float, default=5000, help="wait per attempt")
    call.add_argument("--retries", type=int, default=2)
    call.add_argument("--priority", type=int, default=None, help="0 (highest) .. 9")
    call.add_argument("--deadline-ms", type=float, default=None, help="the request's timeout_ms")
    call.add_argument("--internal", action="store_true",
                      help="mark it as TACore's own call (health checks, scripts): kept out of user figures")
    call.set_defaults(func=_call)

    worker = sub.add_parser("worker", help="run worker processes that join a broker, possibly remote")
    worker.add_argument("--connect", help="broker backend, e.g. tcp://10.0.0.5:5556")
    worker.add_argument("--count", type=int, default=0, help="processes (default WORKER_COUNT)")
    worker.add_argument("--prefix", default=None,
                        help="worker id prefix (default HOSTNAME-w, so workers of several hosts never clash)")
    worker.set_defaults(func=_worker)

    health = sub.add_parser("worker-health",
                            help="exit 0 when every worker here heard the broker lately (WORKER_ALIVE_DIR)")
    health.add_argument("--dir", help="the liveness directory (default WORKER_ALIVE_DIR)")
    health.set_defaults(func=_worker_health)

    broker = sub.add_parser("broker", help="run the broker alone")
    broker.add_argument("--no-request-log", action="store_true", help="do not ship records to a recorder")
    broker.set_defaults(func=_broker)

    sub.add_parser("data-agent", help="run the data agent alone").set_defaults(func=_data_agent)
    sub.add_parser("api", help="run the monitoring sidecar alone").set_defaults(func=_api)
    sub.add_parser("exchange-sim", help="run the Binance-compatible exchange simulator", add_help=False)
    sub.add_parser("llm-sim", help="run the OpenAI-compatible LLM simulator", add_help=False)
    keys_commands.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "exchange-sim":  # the simulator parses its own flags
        from tacore.exchange_sim.server import main as sim_main

        name_process("exchange-sim")
        return sim_main(argv[1:])
    if argv and argv[0] == "llm-sim":
        from tacore.llm_sim.server import main as llm_sim_main

        return llm_sim_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"tacore: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(settings, args)
    except ConfigError as exc:  # e.g. a bind beyond loopback without keys, a missing key file
        print(f"tacore: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
