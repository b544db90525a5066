"""``tacore serve``: starts TACore's processes, says when all of them answer, restarts any that dies,
and stops them in an order that loses no request.

Children are spawned (never forked, so no ZeroMQ context crosses a fork) and each names itself
``tacore: <name>``. A component is one ``Component`` entry in ``Service._components``: its process
entry point, how to tell it answers, and the step of the orderly stop it belongs to; the worker pool
is the one non-process entry. The orderly stop (``Service.stop``):

1. ``stop-intake``: the processes that make requests on their own (the sidecar's polling, the flow
   scheduler) stop, so no new internal traffic starts (a flow cycle in progress resumes at the next start);
2. the broker drains (SIGUSR1): new requests are answered UNAVAILABLE without running, the queued
   and in-flight ones are answered by the workers, and their records reach the recorder;
3. ``stop-work``: the workers and the data agent disconnect from the broker and exit;
4. ``stop-last``: the simulators, then the recorder, which writes every record it received;
5. the broker, which by then holds nothing.

In demo mode the exchange simulator's clock runs at real time and it serves both markets: Binance for
crypto and Alpaca's market-data API for US equities, with a key pair made up for the run. Unless
LLM_BASE_URL names an endpoint, the LLM simulator runs too, with LLM_* pointed at it (and a key made up for
the run), so ``analyze.stock`` ``ai`` answers.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import httpx
from pydantic import SecretStr

from tacore.auth.credentials import check_exposure, client_keys, with_local_keys, worker_keys
from tacore.banner import ReadyFacts, closing_summary, ready_banner
from tacore.childprocess import become_supervised_child, name_process
from tacore.local_ports import server_port
from tacore.process_start import child_context, run_child
from tacore.restarts import RestartBackoff
from tacore.settings import Settings

log = logging.getLogger("tacore.service")

#: Methods the data agent serves; the broker queues calls to them (instead of UNKNOWN_METHOD) while
#: the agent starts or reconnects.
DATA_AGENT_METHODS = frozenset({
    "kline.add_stream", "kline.remove_stream", "kline.add_symbols", "kline.symbols", "kline.connections",
    "kline.status", "kline.history", "get.market_data", "scan.market", "evaluate.risk", "analyze.stock",
})
#: Methods the order process serves (queued, like the data agent's, while it starts).
ORDER_METHODS = frozenset({"execute.order", "order.get", "order.cancel", "order.list", "fill.list",
                           "portfolio.positions", "account.balances"})
DEMO_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
DEMO_US_SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA"]
_STOP_TIMEOUT_S = 8.0
#: How long the broker may take to answer what it holds once it drains; then the stop goes on.
DRAIN_GRACE_S = 10.0
READY_TIMEOUT_S = 90.0

# Stop steps, in order (see the module docstring).
STOP_INTAKE, STOP_WORK, STOP_LAST = "stop-intake", "stop-work", "stop-last"


def _child(name: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    name_process(name)
    become_supervised_child()
    run_child(target, *args)


def _run_broker(settings: Settings, expected: frozenset[str]) -> None:
    from tacore import heap
    from tacore.broker import Broker
    from tacore.broker.refusals import raise_descriptor_limit
    from tacore.logconfig import configure_logging
    from tacore.signals import drain_and_stop_events

    configure_logging(settings, "broker")
    raise_descriptor_limit()
    leave, stop = drain_and_stop_events()
    broker = Broker(settings, expected_methods=expected)
    heap.settle()  # start-up is over: its heap is never walked by the collector again
    broker.serve(leave, stop)


def _run_recorder(settings: Settings) -> None:
    from tacore.recorder import run

    run(settings)


def _run_data_agent(settings: Settings) -> None:
    from workers.ingest.agent import run

    run(settings)


def _run_flow_scheduler(settings: Settings) -> None:
    from workers.flows.scheduler import run

    run(settings)


def _run_orders(settings: Settings) -> None:
    from workers.orders.process import run

    run(settings)


def _run_sidecar(settings: Settings) -> None:
    from tacore.api.server import run

    run(settings, migrate=False)  # the recorder, started first, owns the request log's schema


def _run_exchange_sim(argv: list[str]) -> None:
    from tacore.exchange_sim.server import main

    raise SystemExit(main(argv))


def _run_llm_sim(argv: list[str]) -> None:
    from tacore.llm_sim.server import main

    raise SystemExit(main(argv))


@dataclass
class Component:
    """One child process: how it runs, how to tell it answers, and when it stops."""

    name: str  # also its process title: "tacore: <name>"
    target: Callable[..., None]
    args: tuple[Any, ...]
    stop_step: str
    answers: Callable[[], bool]  # True once it serves (a real request or a bound port)
    process: BaseProcess | None = None
    started_at: float = field(default=0.0)
    backoff: RestartBackoff = field(default_factory=RestartBackoff)  # restarts, and the wait before the next

    @property
    def restarts(self) -> int:
        return self.backoff.restarts


class Service:
    def __init__(self, settings: Settings, *, data_agent: bool = True, api: bool = True, demo: bool = False,
                 workers: int | None = None, flows: bool = True, orders: bool = True) -> None:
        from clients import LazyPirateClient
        from workers.pool import WorkerPool, load_registry

        self._ctx = child_context()
        self.sim_rest_url: str | None = None
        sim_args: list[str] | None = None
        if demo:
            ws_port, rest_port, alpaca_rest, alpaca_ws = (server_port() for _ in range(4))
            key_id, secret = f"DEMO{secrets.token_hex(6).upper()}", secrets.token_urlsafe(24)
            spot_key, spot_secret = secrets.token_hex(32), secrets.token_hex(32)  # the sim's Binance account
            self.sim_rest_url = f"http://127.0.0.1:{rest_port}"
            sim_args = ["--host", "127.0.0.1", "--ws-port", str(ws_port), "--rest-port", str(rest_port),
                        "--alpaca-rest-port", str(alpaca_rest), "--alpaca-ws-port", str(alpaca_ws),
                        # "=": a secret starting with "-" would read as an option (token_urlsafe: 1 in 64)
                        f"--alpaca-key-id={key_id}", f"--alpaca-secret-key={secret}",
                        f"--spot-api-key={spot_key}", f"--spot-api-secret={spot_secret}"]  # the clock at real time
            settings = settings.model_copy(update={
                "exchange_ws_url": f"ws://127.0.0.1:{ws_port}",
                "exchange_rest_url": self.sim_rest_url,
                "alpaca_data_url": f"http://127.0.0.1:{alpaca_rest}",
                "alpaca_stream_url": f"ws://127.0.0.1:{alpaca_ws}",
                "alpaca_api_key_id": key_id,
                "alpaca_api_secret_key": SecretStr(secret),
                "binance_api_key": SecretStr(spot_key),  # venue: binance accounts trade on the simulator
                "binance_api_secret": SecretStr(spot_secret),
                "data_agent_symbols": sorted({*settings.data_agent_symbols, *DEMO_SYMBOLS, *DEMO_US_SYMBOLS}),
            })
        llm_sim: tuple[int, str] | None = None
        if demo and settings.llm_base_url is None:  # analyze.stock ai answers from TACore's LLM simulator
            llm_sim = (server_port(), "sk-demo-" + secrets.token_hex(16))
            settings = settings.model_copy(update={
                "llm_base_url": f"http://127.0.0.1:{llm_sim[0]}/v1", "llm_api_key": SecretStr(llm_sim[1]),
                "llm_model": settings.llm_model or "tacore-sim-1"})
        settings = with_local_keys(settings)  # with BROKER_CURVE on: keys for the pool, data agent and sidecar
        check_exposure(settings)  # refuse here, not in a broker child restarted forever
        worker_keys(settings)
        client_keys(settings)
        self.settings = settings
        self.data_agent = data_agent
        self.api = api
        self.flows = flows
        self.orders = orders
        # The supervisor's own calls (readiness, the closing figures) are internal traffic.
        self.client = LazyPirateClient(settings.client_endpoint, timeout_ms=400, retries=0, internal=True,
                                       curve=client_keys(settings))
        self.pool = WorkerPool(settings, count=workers)  # None: WORKER_COUNT; 0: workers join from elsewhere
        expected = frozenset(load_registry(settings.worker_registry).names())
        if data_agent:
            expected |= DATA_AGENT_METHODS
        if flows:
            from workers.methods.flows import FLOW_METHODS

            expected |= frozenset(FLOW_METHODS)
        if orders:
            expected |= ORDER_METHODS
        self.components = self._components(expected, sim_args, llm_sim)
        self.started_at = 0.0
        self._warn_at = 0.0
        self.ready_at: float | None = None
        self.last_status: dict[str, Any] | None = None
        self.last_metrics: dict[str, Any] | None = None
        self.last_symbols: dict[str, Any] | None = None  # kline.symbols as the data agent answered it when ready

    # -- what runs ---------------------------------------------------------------------------------
    def _components(self, expected: frozenset[str], sim_args: list[str] | None,
                    llm_sim: tuple[int, str] | None = None) -> list[Component]:
        """Every child process, in start order. Adding a component (the flow scheduler) is one entry."""
        s = self.settings
        components: list[Component] = []
        if sim_args is not None:
            rest_port = int(sim_args[sim_args.index("--rest-port") + 1])
            components.append(Component("exchange-sim", _run_exchange_sim, (sim_args,), STOP_LAST,
                                        lambda: _port_open(rest_port)))
        if llm_sim is not None:
            llm_port, llm_key = llm_sim
            components.append(Component("llm-sim", _run_llm_sim, ([
                "--host", "127.0.0.1", "--port", str(llm_port), "--api-key", llm_key],),
                STOP_LAST, lambda: _port_open(llm_port)))
        components.append(Component("recorder", _run_recorder, (s,), STOP_LAST,
                                    lambda: _port_open(s.recorder_port)))
        components.append(Component("broker", _run_broker, (s, expected), "broker", self._broker_answers))
        if self.data_agent:
            components.append(Component("data-agent", _run_data_agent, (s,), STOP_WORK, self._data_agent_answers))
        if self.flows:
            components.append(Component("flow-scheduler", _run_flow_scheduler, (s,), STOP_INTAKE,
                                        self._scheduler_answers))
        if self.orders:
            components.append(Component("orders", _run_orders, (s,), STOP_WORK, self._orders_answer))
        if self.api:
            components.append(Component("sidecar", _run_sidecar, (s,), STOP_INTAKE, self._sidecar_answers))
        return components

    def _component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    # -- running -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.started_at = time.monotonic()
        self._warn_at = self.started_at + READY_TIMEOUT_S
        for component in self.components:
            self._start(component)
        self.pool.start()
        log.info("tacore starting: %s, %d workers", ", ".join(c.name for c in self.components), self.pool.count)
        reports = SupervisorReports(self)
        try:
            while not stop.wait(0.2):
                self._supervise()
                reports.maybe_send(time.monotonic())
                if self.ready_at is None:
                    self._check_ready()
        finally:
            reports.close()
            self.stop()
            self.client.close()

    def _supervise(self) -> None:
        now = time.monotonic()
        for component in self.components:
            self._restart_if_dead(component, now)
        self.pool.check()

    def _restart_if_dead(self, component: Component, now: float) -> None:
        """Restart a component that exited: at once after a good run, with backoff while it keeps dying."""
        backoff = component.backoff
        assert component.process is not None
        if backoff.next_start_at is None and not component.process.is_alive():
            delay = backoff.exited(component.process.exitcode, now - component.started_at, now)
            log.error("%s (pid %s) exited with %s%s; restarting %s", component.name, component.process.pid,
                      component.process.exitcode,
                      f" ({backoff.failures_in_row} times in a row)" if backoff.failures_in_row > 1 else "",
                      f"in {delay:.1f} s" if delay else "now")
        if backoff.due(now):
            backoff.started()
            self._start(component)

    def _start(self, component: Component) -> None:
        proc = self._ctx.Process(target=_child, args=(component.name, component.target, component.args),
                                 name=f"tacore-{component.name}")
        proc.start()
        component.process = proc
        component.started_at = time.monotonic()

    # -- readiness ---------------------------------------------------------------------------------
    def _check_ready(self) -> None:
        waiting = [c.name for c in self.components if not _safely(c.answers)]
        if not self._workers_answer():
            waiting.append("workers")
        now = time.monotonic()
        if waiting:
            if now >= self._warn_at:  # overdue: say what is missing, every 30 s
                log.warning("still waiting for %s to answer after %.0f s", ", ".join(waiting), now - self.started_at)
                self._warn_at = now + 30.0
            return
        self.ready_at = time.monotonic()
        facts = self._ready_facts(self.ready_at - self.started_at)
        text = ready_banner(facts)
        print(text, flush=True)
        log.info("tacore ready in %.1f s: clients on %s, dashboard %s", facts.startup_s, facts.client_endpoint,
                 facts.dashboard_url or "(no sidecar)")

    def _broker_answers(self) -> bool:
        self.last_status = self._call("broker.status")
        return self.last_status is not None

    def _workers_answer(self) -> bool:
        status = self.last_status or {}
        live = [w for w in status.get("workers", []) if w.get("kind") == "worker" and w.get("state") != "dead"]
        return len(live) >= self.pool.count

    def _data_agent_answers(self) -> bool:
        serving = (self.last_status or {}).get("methods", {}).get("kline.symbols", {}).get("workers", 0)
        if serving:
            self.last_symbols = self._call("kline.symbols")  # the banner's list (no second call on a busy box)
        return bool(serving) and self.last_symbols is not None

    def _scheduler_answers(self) -> bool:
        serving = (self.last_status or {}).get("methods", {}).get("flow.stats", {}).get("workers", 0)
        return bool(serving) and self._call("flow.stats") is not None

    def _orders_answer(self) -> bool:
        serving = (self.last_status or {}).get("methods", {}).get("order.list", {}).get("workers", 0)
        return bool(serving) and self._call("order.list") is not None

    def _sidecar_answers(self) -> bool:
        response = httpx.get(f"http://127.0.0.1:{self.settings.api_port}/health", timeout=0.5)
        return response.status_code in (200, 503)  # 503: it answers, and says what is down

    def _call(self, method: str) -> Any:
        reply = self.client.request(method, {}, timeout_ms=400)
        return reply.get("data") if reply.get("status") == "success" else None

    def _ready_facts(self, startup_s: float) -> ReadyFacts:
        s = self.settings
        symbols: list[str] = []
        if self.data_agent:
            symbols = list((self.last_symbols or {}).get("symbols", []))
        host = "127.0.0.1" if s.api_bind_host in ("0.0.0.0", "::") else s.api_bind_host
        dashboard = f"http://{host}:{s.api_port}/" if self.api else None
        return ReadyFacts(
            version=_version(), startup_s=round(startup_s, 1), client_endpoint=s.frontend_endpoint,
            worker_endpoint=s.backend_endpoint, events_endpoint=s.events_endpoint,
            workers=[f"{self.pool.prefix}{i + 1}" for i in range(self.pool.count)],
            dashboard_url=dashboard, docs_url=None if dashboard is None else dashboard + "docs",
            api_key=s.api_key is not None, data_dir=str(s.data_dir.resolve()), log_dir=str(s.log_dir.resolve()),
            request_log=_safe_url(s.database_url) if s.database_url else f"SQLite {s.database_path.resolve()}",
            candles="embedded chDB" if s.clickhouse_url is None else
            f"ClickHouse at {_safe_url(s.clickhouse_url)}",
            data_agent=self.data_agent, symbols=symbols,
            source=f"the exchange simulator ({self.sim_rest_url})" if self.sim_rest_url else s.exchange_ws_url,
            subscriptions_file=str((s.data_dir / "data-agent" / "subscriptions.json").resolve()),
        )

    # -- the orderly stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Intake, drain, work, last, broker (see the module docstring); then the closing summary."""
        began = time.monotonic()
        self._stop_step(STOP_INTAKE)
        broker = self._component("broker")
        if broker is not None and broker.process is not None and broker.process.is_alive():
            self._drain(broker.process)
        self.pool.stop(_STOP_TIMEOUT_S)
        self._stop_step(STOP_WORK)
        self._wait_records_shipped()
        self._stop_step(STOP_LAST)
        if broker is not None and broker.process is not None:
            _terminate(broker.process)
        summary = closing_summary(self.last_status, self.last_metrics, uptime_s=time.monotonic() - self.started_at,
                                  stop_s=time.monotonic() - began, restarts=self._restarts())
        print(summary, flush=True)
        log.info("tacore stopped. %s", "; ".join(" ".join(line.split()) for line in summary.splitlines()[1:]))

    def _stop_step(self, step: str) -> None:
        """Stop every component of ``step``, in the reverse of their start order."""
        for component in reversed([c for c in self.components if c.stop_step == step]):
            if component.process is not None:
                _terminate(component.process)

    def _drain(self, broker: BaseProcess) -> None:
        """Ask the broker to drain (SIGUSR1) and wait until it holds nothing, up to ``DRAIN_GRACE_S``."""
        import os
        import signal

        if broker.pid is None:
            return
        os.kill(broker.pid, signal.SIGUSR1)
        deadline = time.monotonic() + DRAIN_GRACE_S
        while time.monotonic() < deadline:
            status = _safely(lambda: self._call("broker.status"))
            if status is not None:
                self.last_status = status
                if status.get("draining") and not status.get("queue_depth") and not status.get("inflight"):
                    break
            time.sleep(0.05)
        else:
            log.warning("broker still held requests after %.0f s of draining; stopping anyway", DRAIN_GRACE_S)
        self.last_metrics = _safely(lambda: self._call("broker.metrics")) or self.last_metrics

    def _wait_records_shipped(self, timeout_s: float = 3.0) -> None:
        """Until the broker has shipped every request-log record to the recorder (or ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = _safely(lambda: self._call("broker.status"))
            if status is None:
                return
            self.last_status = status
            if not (status.get("request_log") or {}).get("pending"):
                return
            time.sleep(0.05)

    def _restarts(self) -> dict[str, int]:
        counts = {c.name: c.restarts for c in self.components if c.restarts}
        if self.pool.restarts:
            counts["workers"] = self.pool.restarts
        return counts


class SupervisorReports:
    """What the supervisor tells the broker (``tacore.health``): the components it restarts, and DATA_DIR's disk."""

    def __init__(self, service: Service) -> None:
        from tacore.reporting import StateReporter, reporter_keys

        self.service = service
        self.interval_s = service.settings.heartbeat_interval_ms / 1000.0
        self.reporter = StateReporter(service.settings.client_endpoint, "supervisor",
                                      curve=reporter_keys(service.settings, "supervisor"))
        self._next = 0.0

    def maybe_send(self, now: float) -> None:
        if now < self._next:
            return
        from tacore.health import disk_facts

        self._next = now + self.interval_s
        components = {c.name: c.backoff.to_wire(now) for c in self.service.components}
        components["workers"] = self.service.pool.restart_facts(now)
        self.reporter.send({"components": components, "disk": disk_facts(self.service.settings.data_dir)})

    def close(self) -> None:
        self.reporter.close()


def _terminate(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()
    proc.join(_STOP_TIMEOUT_S)
    if proc.is_alive():
        log.warning("%s did not stop in %.0f s; killing it", proc.name, _STOP_TIMEOUT_S)
        proc.kill()
        proc.join(2)


def _safely(check: Callable[[], Any]) -> Any:
    """A readiness probe's answer; any failure (refused, timed out) is "not yet"."""
    try:
        return check()
    except Exception:
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True) if "://" in url else url
    except Exception:
        return url


def _version() -> str:
    from tacore import __version__

    return __version__
