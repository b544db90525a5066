"""A broker with keys on (BROKER_CURVE, bound to 0.0.0.0): who may connect to which port, and call what.

One ``tacore serve`` (with its sidecar) for the module, keys made before it starts (and some while
it runs, which the broker must take at once); every test uses keys of its own, so a revocation in
one touches no other.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zmq

from clients import CurveKeys, Forbidden, KeyRefused, LazyPirateClient
from clients.curve import HandshakeWatch
from tacore.auth.keyring import KeyKind, Keyring
from tacore.auth.roles import Role
from tests.support import rogue
from tests.support.processes import ROOT, TACoreProcess, wait_until


@dataclass
class Keyed:
    proc: TACoreProcess
    keyring: Keyring

    def keys(self, name: str) -> CurveKeys:
        return CurveKeys.load(self.keyring.secret_file(name))

    def new_key(self, name: str, kind: KeyKind = KeyKind.CLIENT, role: Role | None = Role.READ) -> CurveKeys:
        made = self.keyring.generate(name, kind, role if kind is KeyKind.CLIENT else None)
        return CurveKeys.load(made.secret_file)

    def client(self, name: str, timeout_ms: float = 3000, retries: int = 0) -> LazyPirateClient:
        return LazyPirateClient(self.proc.frontend, timeout_ms=timeout_ms, retries=retries, curve=self.keys(name))

    def status(self) -> dict[str, Any]:
        with self.client("local-admin") as client:
            data: dict[str, Any] = client.call("broker.status")
        return data

    def live(self, worker_id: str) -> dict[str, Any] | None:
        return next((w for w in self.status()["workers"] if w["worker_id"] == worker_id and w["state"] != "dead"),
                    None)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    workdir = tmp_path_factory.mktemp("keyed")
    keyring = Keyring(workdir / "data" / "keys")
    for name, role in (("reader", Role.READ), ("trader", Role.TRADE), ("admin", Role.ADMIN)):
        keyring.generate(name, KeyKind.CLIENT, role)
    keyring.generate("remote", KeyKind.WORKER)
    proc = TACoreProcess(workdir, ["serve", "--no-data-agent"],
                         env={"BROKER_CURVE": "true", "BIND_ADDRESS": "0.0.0.0"}).start()
    service = Keyed(proc, keyring)
    try:
        wait_until(lambda: keyring.secret_file("local-admin").is_file() and service.status()["live_workers"] >= 2,
                   30, "tacore serve with keys and 2 live workers")
        yield service
    except BaseException:
        sys.stderr.write(proc.output()[-4000:])
        raise
    finally:
        proc.stop()


@pytest.fixture
def keyed_worker(keyed: Keyed, tmp_path: Path) -> Iterator[Callable[[str, str], subprocess.Popen[bytes]]]:
    """Start ``tests.support.keyed_worker`` processes with a key of the keyring; killed after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(worker_id: str, key: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / f"{worker_id}.out").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.keyed_worker", keyed.proc.backend, worker_id,
                                 str(keyed.keyring.secret_file(key))], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def _refused(watch: HandshakeWatch) -> bool:
    return watch.check() is not None and "refused" in (watch.refusal or "")


def test_a_dealer_without_keys_is_never_heard_on_either_port(keyed: Keyed) -> None:
    def health_checks() -> int:  # answered to users (the sidecar's own polls are internal and other methods)
        with keyed.client("admin") as admin:
            count: int = admin.call("broker.metrics")["methods"].get("health.check", {}).get("count", 0)
        return count

    with keyed.client("reader") as reader:
        reader.call("health.check")
    before = health_checks()
    assert before >= 1  # the count sees a keyed client's call
    worker = rogue.dealer(keyed.proc.backend)
    client = rogue.dealer(keyed.proc.frontend)
    try:
        rogue.send_ready(worker, "plain-rogue", {"health.check": {"idempotent": True}})
        client.send_multipart([b"", b'{"request_id": "plain", "method": "health.check"}'])
        assert rogue.messages(worker, 1000) == [] and rogue.messages(client, 100) == []
    finally:
        worker.close()
        client.close()
    assert health_checks() == before  # the rogue's request never arrived
    assert all(w["worker_id"] != "plain-rogue" for w in keyed.status()["workers"])


def test_an_unknown_key_is_refused_at_the_handshake_on_both_ports(keyed: Keyed) -> None:
    public, secret = zmq.curve_keypair()
    stranger = CurveKeys(public, secret, keyed.keyring.server_keys()[0])
    pairs = [rogue.watched_dealer(endpoint, stranger) for endpoint in (keyed.proc.backend, keyed.proc.frontend)]
    sockets, watches = [sock for sock, _ in pairs], [watch for _, watch in pairs]
    try:
        rogue.send_ready(sockets[0], "stranger", {"health.check": {"idempotent": True}})
        sockets[1].send_multipart([b"", b'{"method": "health.check"}'])
        for watch in watches:
            wait_until(lambda w=watch: _refused(w), 5, "the handshake refused")  # type: ignore[misc]
        assert rogue.messages(sockets[0], 200) == [] and rogue.messages(sockets[1], 50) == []
    finally:
        for watch, sock in zip(watches, sockets, strict=True):
            watch.close()
            sock.close()
    assert keyed.live("stranger") is None
    wait_until(lambda: f"key {public.decode()}, it is not on the allow-list" in keyed.proc.output(), 5,
               "the refusal logged")


def test_a_client_key_cannot_register_as_a_worker(keyed: Keyed) -> None:
    sock, watch = rogue.watched_dealer(keyed.proc.backend, keyed.keys("admin"))
    try:
        rogue.send_ready(sock, "imposter", {"health.check": {"idempotent": True}})
        wait_until(lambda: _refused(watch), 5, "the admin client key refused on the worker port")
    finally:
        watch.close()
        sock.close()
    assert keyed.live("imposter") is None
    wait_until(lambda: "it is a client key ('admin')" in keyed.proc.output(), 5, "the refusal logged")


def test_a_worker_key_cannot_send_client_requests(keyed: Keyed) -> None:
    with (LazyPirateClient(keyed.proc.frontend, timeout_ms=700, retries=0, curve=keyed.keys("remote")) as client,
          pytest.raises(KeyRefused, match="refused this key")):
        client.request("health.check")


def test_a_worker_key_registers_and_each_client_role_reaches_only_its_methods(
        keyed: Keyed, keyed_worker: Callable[[str, str], subprocess.Popen[bytes]]) -> None:
    keyed_worker("remote-1", "remote")
    record = wait_until(lambda: keyed.live("remote-1"), 10, "the keyed worker registered")
    assert record["key"] == "remote"
    forbidden_before = keyed.status()["counters"]["forbidden"]
    with keyed.client("reader") as reader, keyed.client("trader") as trader, keyed.client("admin") as admin:
        assert reader.call("auth.echo", {"tag": "r"})["tag"] == "r"
        assert trader.call("auth.trade", {"tag": "t"})["traded"] == "t"
        with pytest.raises(Forbidden) as denied:
            reader.call("auth.trade", {"tag": "r"})
        assert denied.value.details["required_role"] == "trade" and denied.value.details["key"] == "reader"
        for method in ("execute.order", "kline.add_stream", "kline.add_symbols", "kline.remove_stream"):
            reply = reader.request(method, {})
            assert reply["error"]["code"] == "FORBIDDEN" and reply["error"]["retryable"] is False, method
        assert trader.request("kline.add_symbols", {"symbols": ["BTCUSDT"]})["error"]["code"] == "FORBIDDEN"
        # admin passes the role check; no data agent runs here, so the method itself is unknown
        assert admin.request("kline.add_stream", {})["error"]["code"] == "UNKNOWN_METHOD"
        assert admin.call("auth.trade", {"tag": "a"})["traded"] == "a"
    assert keyed.status()["counters"]["forbidden"] == forbidden_before + 6


def test_the_order_process_serves_a_keyed_broker_trading_for_trade_keys_and_reading_for_read_keys(
        keyed: Keyed) -> None:
    wait_until(lambda: keyed.live("orders"), 60, "the order process registered")
    with keyed.client("reader") as reader, keyed.client("trader", timeout_ms=10_000) as trader:
        for method in ("execute.order", "order.cancel"):
            assert reader.request(method, {})["error"]["code"] == "FORBIDDEN", method
        # no data agent runs here: the order has no price and is rejected saying so, but it is an order
        order = trader.call("execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01"})
        assert order["status"] == "rejected" and order["reason"] == "no price for BTCUSDT"
        assert reader.call("order.get", {"order_id": order["id"]})["id"] == order["id"]
        assert order["id"] in [o["id"] for o in reader.call("order.list", {"status": "all"})["orders"]]
        assert reader.call("portfolio.positions")["count"] == 0
        assert reader.call("account.balances")["count"] >= 1
        assert trader.call("order.cancel", {"order_id": order["id"]})["status"] == "rejected"  # what it was


def test_a_valid_worker_key_still_cannot_take_a_live_worker_id(keyed: Keyed) -> None:
    keyed.new_key("second-remote", KeyKind.WORKER)
    victim = next(w for w in keyed.status()["workers"] if w["kind"] == "worker" and w["state"] != "dead")
    sock = rogue.dealer(keyed.proc.backend, keyed.keys("second-remote"))
    try:
        rogue.send_ready(sock, victim["worker_id"], {"health.check": {"idempotent": True}})
        reason = rogue.disconnect_reason(rogue.messages(sock, 3000))
    finally:
        sock.close()
    assert reason is not None and f"{victim['worker_id']!r} is live on another connection" in reason
    assert keyed.live(victim["worker_id"])["pid"] == victim["pid"]  # type: ignore[index]


def test_a_revoked_client_key_loses_live_and_new_connections(keyed: Keyed) -> None:
    keys = keyed.new_key("doomed-client", role=Role.TRADE)  # made while the broker runs: admitted at once
    with LazyPirateClient(keyed.proc.frontend, timeout_ms=3000, retries=0, curve=keys) as live:
        assert live.call("health.check")["status"] == "healthy"
        revoke = subprocess.run([sys.executable, "-m", "tacore", "keys", "revoke", "doomed-client"],
                                cwd=keyed.proc.workdir, env=keyed.proc.env, capture_output=True, text=True, timeout=30)
        assert revoke.returncode == 0, revoke.stderr
        reply = wait_until(lambda: (r := live.request("health.check"))["status"] == "error" and r, 5,
                           "the live connection refused after the next heartbeat")
        assert reply["error"]["code"] == "FORBIDDEN" and "revoked" in reply["error"]["message"]
    with (LazyPirateClient(keyed.proc.frontend, timeout_ms=700, retries=0, curve=keys) as fresh,
          pytest.raises(KeyRefused)):
        fresh.request("health.check")


def test_a_revoked_worker_key_drops_its_live_worker_for_good(
        keyed: Keyed, keyed_worker: Callable[[str, str], subprocess.Popen[bytes]], tmp_path: Path) -> None:
    keyed.new_key("doomed-worker", KeyKind.WORKER)
    worker = keyed_worker("doomed-1", "doomed-worker")
    wait_until(lambda: keyed.live("doomed-1"), 10, "the doomed worker registered")
    keyed.keyring.revoke("doomed-worker")

    def dropped() -> dict[str, Any] | None:
        return next((w for w in keyed.status()["workers"]
                     if w["worker_id"] == "doomed-1" and w["dead_reason"] == "key revoked"), None)

    wait_until(dropped, 5, "the worker removed for its revoked key")
    time.sleep(1.5)  # it reconnects within 50-500 ms; the broker must keep refusing it
    assert keyed.live("doomed-1") is None
    assert worker.poll() is None
    wait_until(lambda: "broker refused this key" in (tmp_path / "doomed-1.out").read_text(), 5,
               "the worker told why it cannot connect")


def test_serve_s_own_processes_use_local_keys_the_sidecar_included(keyed: Keyed) -> None:
    status = keyed.status()
    assert status["auth"] == "curve"
    own = {"worker", "orders", "flow-scheduler"}  # pool workers, the order process, the flow scheduler

    def serving() -> list[dict[str, Any]] | None:  # every one of serve's processes joins with the local worker key
        live = [w for w in keyed.status()["workers"] if w["kind"] in own and w["state"] != "dead"]
        return live if {w["kind"] for w in live} == own else None

    assert {w["key"] for w in wait_until(serving, 30, "serve's own processes registered")} == {"local-worker"}
    with keyed.client("reader") as reader:  # the request ids in flight are for admins only
        assert reader.request("broker.status")["error"]["code"] == "FORBIDDEN"
        assert "methods" in reader.call("broker.metrics")
    url = f"http://127.0.0.1:{keyed.proc.ports['API_PORT']}/health"

    def healthy() -> dict[str, Any] | None:
        reply = httpx.get(url, timeout=2)
        body: dict[str, Any] = reply.json()
        return body if reply.status_code == 200 else None

    body = wait_until(healthy, 30, "the sidecar reaching the keyed broker")
    assert body["components"]["broker"]["status"] == "up"
    assert body["components"]["workers"]["live"] == 4  # 2 pool workers, the flow scheduler, the order process

    def reported() -> dict[str, Any] | None:  # broker.report needs admin: the recorder presents local-admin
        states: dict[str, Any] = keyed.status()["health"]["dependencies"]
        return states if states["recorder"]["status"] == "up" and states["database"]["status"] == "up" else None

    states = wait_until(reported, 30, "the recorder's reports reaching the keyed broker")
    assert states["disk"]["status"] == "up" and states["disk"]["reported_by"] == "supervisor"


def test_tacore_worker_connect_joins_with_a_worker_key(keyed: Keyed, tmp_path: Path) -> None:
    made = keyed.keyring.generate("remote-host", KeyKind.WORKER)
    remote = TACoreProcess(tmp_path / "remote", ["worker", "--connect", keyed.proc.backend, "--count", "1",
                                                 "--prefix", "far-"],
                           env={"WORKER_KEY": str(made.secret_file)}).start()
    missing = TACoreProcess(tmp_path / "missing", ["worker", "--connect", keyed.proc.backend],
                            env={"WORKER_KEY": str(tmp_path / "nothing.key_secret")}).start()
    try:
        record = wait_until(lambda: keyed.live("far-1"), 20, "the remote worker registered")
        assert record["key"] == "remote-host"
        assert missing.proc is not None and missing.proc.wait(20) == 2
        assert "WORKER_KEY: cannot read key file" in missing.output()
    finally:
        remote.stop()
        missing.stop()


def test_the_data_agent_joins_with_a_worker_key_and_its_commands_need_admin(keyed: Keyed, tmp_path: Path) -> None:
    from tacore.exchange_sim.config import SimConfig
    from tacore.exchange_sim.server import ExchangeSimulator
    from tests.support.ports import free_port

    made = keyed.keyring.generate("agent-host", KeyKind.WORKER)
    reports = keyed.keyring.generate("agent-host-reports", KeyKind.CLIENT, Role.ADMIN)  # its health reports
    sim = ExchangeSimulator(SimConfig()).start()
    ports = {**keyed.proc.ports, "EVENTS_PORT": free_port()}
    agent = TACoreProcess(tmp_path / "agent", ["data-agent"], ports=ports, env={
        "WORKER_KEY": str(made.secret_file), "CLIENT_KEY": str(reports.secret_file),
        "TACORE_INGEST_WORKER_ID": "keyed-agent",
        "EXCHANGE_WS_URL": sim.ws_url, "EXCHANGE_REST_URL": sim.rest_url}).start()
    try:
        record = wait_until(lambda: keyed.live("keyed-agent"), 30, "the data agent registered with its key")
        assert record["key"] == "agent-host"
        stream = {"symbol": "BTCUSDT", "interval": "1m"}
        with keyed.client("reader", timeout_ms=10_000) as reader, keyed.client("admin", timeout_ms=10_000) as admin:
            assert reader.request("kline.add_stream", stream)["error"]["code"] == "FORBIDDEN"
            assert admin.call("kline.add_stream", stream)["stream"] == "btcusdt@kline_1m"
            assert reader.call("kline.symbols")["symbols"] == ["BTCUSDT"]

        def reporting() -> dict[str, Any] | None:  # its reports, under its client key, reach the keyed broker
            state: dict[str, Any] = keyed.status()["health"]["dependencies"]["data_agent"]
            return state if state.get("connections") and state["connected"] == state["connections"] else None

        state = wait_until(reporting, 30, "the data agent's health reports")
        assert state["workers"] == ["keyed-agent"] and state["status"] == "up"
    finally:
        agent.stop()
        sim.stop()
