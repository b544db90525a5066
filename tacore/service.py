"""``tacore serve``: starts TACore's processes, restarts any that dies, and stops them all in order.

Children (spawned, never forked, so no ZeroMQ context crosses a fork): recorder, broker, the worker
pool, the data agent, the monitoring sidecar, and in demo mode the exchange simulator.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from tacore.childprocess import become_supervised_child
from tacore.settings import Settings

log = logging.getLogger("tacore.service")

#: Methods the data agent serves; the broker queues calls to them (instead of UNKNOWN_METHOD) while
#: the agent starts or reconnects.
DATA_AGENT_METHODS = frozenset({
    "kline.add_stream", "kline.remove_stream", "kline.add_symbols", "kline.symbols", "kline.connections",
    "kline.status", "kline.history", "get.market_data",
})
DEMO_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
_STOP_TIMEOUT_S = 8.0


def _child(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    become_supervised_child()
    target(*args)


def _run_broker(settings: Settings, expected: frozenset[str]) -> None:
    from tacore.broker import Broker
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals

    configure_logging(settings, "broker")
    stop = stop_event_on_signals()
    Broker(settings, expected_methods=expected).run(stop)


def _run_recorder(settings: Settings) -> None:
    from tacore.recorder import run

    run(settings)


def _run_data_agent(settings: Settings) -> None:
    from workers.ingest.agent import run

    run(settings)


def _run_api(settings: Settings) -> None:
    from tacore.api.server import run

    run(settings)


def _run_exchange_sim(argv: list[str]) -> None:
    from tacore.exchange_sim.server import main

    raise SystemExit(main(argv))


@dataclass
class Component:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: BaseProcess | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


class Service:
    def __init__(self, settings: Settings, *, data_agent: bool = True, api: bool = True, demo: bool = False) -> None:
        from workers.pool import WorkerPool, load_registry

        self._ctx = multiprocessing.get_context("spawn")
        components: list[Component] = []
        if demo:
            ws_port, rest_port = _free_port(), _free_port()
            components.append(Component("exchange-sim", _run_exchange_sim, ([
                "--host", "127.0.0.1", "--ws-port", str(ws_port), "--rest-port", str(rest_port),
                "--clock-speed", "60"],)))
            settings = settings.model_copy(update={
                "exchange_ws_url": f"ws://127.0.0.1:{ws_port}",
                "exchange_rest_url": f"http://127.0.0.1:{rest_port}",
                "data_agent_symbols": sorted({*settings.data_agent_symbols, *DEMO_SYMBOLS}),
            })
        self.settings = settings
        expected = frozenset(load_registry(settings.worker_registry).names())
        if data_agent:
            expected |= DATA_AGENT_METHODS
        components.append(Component("recorder", _run_recorder, (settings,)))
        components.append(Component("broker", _run_broker, (settings, expected)))
        if data_agent:
            components.append(Component("data-agent", _run_data_agent, (settings,)))
        if api:
            components.append(Component("api", _run_api, (settings,)))
        self.components = components
        self.pool = WorkerPool(settings)

    def run(self, stop: threading.Event) -> None:
        for component in self.components:
            self._start(component)
            if component.name in ("recorder", "exchange-sim"):
                time.sleep(0.2)  # let it bind before its producers connect
        self.pool.start()
        log.info("tacore serving: clients on %s, %d workers, components: %s", self.settings.frontend_endpoint,
                 self.pool.count, ", ".join(c.name for c in self.components))
        while not stop.wait(0.2):
            for component in self.components:
                assert component.process is not None
                if not component.process.is_alive():
                    log.error("%s (pid %s) exited with %s; restarting", component.name, component.process.pid,
                              component.process.exitcode)
                    component.restarts += 1
                    if time.monotonic() - component.started_at < 2.0:
                        time.sleep(1.0)  # do not spin on a component that dies at start-up
                    self._start(component)
            self.pool.check()
        self.stop()

    def stop(self) -> None:
        """Broker first (it answers what it holds), then the producers, the recorder last (it flushes)."""
        order = ["broker", "api", "workers", "data-agent", "exchange-sim", "recorder"]
        by_name = {c.name: c for c in self.components}
        for name in order:
            if name == "workers":
                self.pool.stop(_STOP_TIMEOUT_S)
                continue
            component = by_name.get(name)
            if component is None or component.process is None:
                continue
            _terminate(component.process)
        log.info("tacore stopped")

    def _start(self, component: Component) -> None:
        proc = self._ctx.Process(target=_child, args=(component.target, component.args),
                                 name=f"tacore-{component.name}")
        proc.start()
        component.process = proc
        component.started_at = time.monotonic()


def _terminate(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()
    proc.join(_STOP_TIMEOUT_S)
    if proc.is_alive():
        log.warning("%s did not stop in %.0f s; killing it", proc.name, _STOP_TIMEOUT_S)
        proc.kill()
        proc.join(2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
