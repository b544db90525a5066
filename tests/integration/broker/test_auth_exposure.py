"""Binding beyond loopback: refused without keys, allowed (with a warning) only in explicit insecure mode."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable

import pytest

from tests.support.processes import TACoreProcess, raw_call, wait_until


@pytest.mark.parametrize("args", [["broker", "--no-request-log"], ["serve", "--no-data-agent", "--no-api"]])
def test_binding_all_interfaces_without_keys_refuses_to_start(tacore_factory: Callable[..., TACoreProcess],
                                                              args: list[str]) -> None:
    proc = tacore_factory(args, BIND_ADDRESS="0.0.0.0")
    assert proc.proc is not None
    try:
        code = proc.proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tacore {args[0]} started on 0.0.0.0 without keys:\n{proc.output()[-2000:]}")
    assert code == 2
    assert "BIND_ADDRESS=0.0.0.0 exposes the broker" in proc.output()
    assert "BROKER_INSECURE=true" in proc.output()


def test_insecure_mode_starts_on_all_interfaces_and_warns(tacore_factory: Callable[..., TACoreProcess]) -> None:
    proc = tacore_factory(["broker", "--no-request-log"], BIND_ADDRESS="0.0.0.0", BROKER_INSECURE="true")

    def status() -> dict[str, object]:
        data: dict[str, object] = raw_call(proc.frontend, {"request_id": uuid.uuid4().hex, "method": "broker.status"},
                                           500)["data"]
        return data

    wait_until(status, 20, "the insecure broker answering")
    wait_until(lambda: "INSECURE: the broker binds 0.0.0.0 without keys" in proc.output(), 5, "the warning")
