"""Who may register: no taking over a live worker id, no redefining a live method's idempotent flag or role."""

from __future__ import annotations

from pydantic import BaseModel

from tacore.broker.workers import WorkerRecord, WorkerRegistry
from workers.registry import MethodRegistry


def _worker(identity: str, worker_id: str, idempotent: bool = True, roles: dict[str, str] | None = None,
            methods: tuple[str, ...] = ("health.check",)) -> WorkerRecord:
    return WorkerRecord(identity.encode(), worker_id, 1, "h", "worker", frozenset(methods),
                        frozenset(methods) if idempotent else frozenset(), 4, 1e9, roles or {})


def test_a_live_worker_id_on_another_connection_is_refused() -> None:
    registry = WorkerRegistry()
    registry.add(_worker("w1#0", "w1"))
    refusal = registry.refusal(_worker("rogue", "w1"))
    assert refusal is not None and "'w1' is live" in refusal
    assert registry.refusal(_worker("w2#0", "w2")) is None


def test_a_worker_id_is_free_again_once_its_worker_is_gone() -> None:
    registry = WorkerRegistry()
    first = _worker("w1#0", "w1")
    registry.add(first)
    registry.remove(first, "heartbeat expired")
    assert registry.refusal(_worker("w1#1", "w1")) is None


def test_a_different_idempotent_flag_than_the_live_workers_is_refused_never_last_wins() -> None:
    registry = WorkerRegistry()
    registry.add(_worker("a", "a", idempotent=True))
    refusal = registry.refusal(_worker("b", "b", idempotent=False))
    assert refusal is not None and "idempotent=False" in refusal
    assert registry.idempotent["health.check"] is True


def test_a_different_role_than_the_live_workers_is_refused() -> None:
    registry = WorkerRegistry()
    registry.add(_worker("a", "a", methods=("quotes.place",), roles={"quotes.place": "trade"}))
    assert registry.refusal(_worker("b", "b", methods=("quotes.place",))) is not None
    assert registry.refusal(_worker("c", "c", methods=("quotes.place",), roles={"quotes.place": "trade"})) is None


def test_an_explicit_role_equal_to_the_default_is_the_same_declaration() -> None:
    registry = WorkerRegistry()
    registry.add(_worker("a", "a"))
    assert registry.refusal(_worker("b", "b", roles={"health.check": "read"})) is None


def test_a_flag_may_change_once_no_live_worker_serves_the_method() -> None:
    registry = WorkerRegistry()
    old = _worker("a", "a", idempotent=True)
    registry.add(old)
    registry.remove(old, "disconnected")
    assert registry.refusal(_worker("b", "b", idempotent=False)) is None


class NoParams(BaseModel):
    pass


def test_a_method_declares_its_role_in_ready() -> None:
    registry = MethodRegistry()

    @registry.method("quotes.place", role="trade")
    def place(params: NoParams) -> None:
        return None

    @registry.method("quotes.list", idempotent=True)
    def listing(params: NoParams) -> None:
        return None

    assert registry.declaration() == {"quotes.list": {"idempotent": True},
                                      "quotes.place": {"idempotent": False, "role": "trade"}}
