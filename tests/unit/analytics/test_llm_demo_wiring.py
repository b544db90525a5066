"""``tacore serve --demo`` runs the LLM simulator and points the LLM settings at it (unless one is configured)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tacore.service import Service
from tacore.settings import Settings


@pytest.fixture
def make_service() -> Iterator[Callable[..., Service]]:
    """Services built (never run); their supervisor client is closed after the test."""
    made: list[Service] = []

    def make(settings: Settings, demo: bool) -> Service:
        made.append(Service(settings, demo=demo))
        return made[-1]

    yield make
    for service in made:
        service.client.close()


def test_demo_starts_an_llm_simulator_and_points_the_settings_at_it(make_service: Callable[..., Service]) -> None:
    service = make_service(Settings(llm_base_url=None, llm_model=None, llm_api_key=None), demo=True)
    sim = next(c for c in service.components if c.name == "llm-sim")
    argv: list[str] = sim.args[0]
    port, key = argv[argv.index("--port") + 1], argv[argv.index("--api-key") + 1]
    assert service.settings.llm_base_url == f"http://127.0.0.1:{port}/v1"
    assert service.settings.llm_model == "tacore-sim-1"
    assert service.settings.llm_api_key is not None and service.settings.llm_api_key.get_secret_value() == key
    assert key.startswith("sk-demo-") and key not in repr(service.settings)  # a fresh key, kept secret
    names = [c.name for c in service.components]
    assert names.index("llm-sim") < names.index("data-agent")  # up before the agent may call it


def test_demo_keeps_an_endpoint_the_user_configured(make_service: Callable[..., Service]) -> None:
    service = make_service(Settings(llm_base_url="http://10.0.0.5:8000/v1", llm_model="qwen"), demo=True)
    assert "llm-sim" not in [c.name for c in service.components]
    assert service.settings.llm_base_url == "http://10.0.0.5:8000/v1" and service.settings.llm_model == "qwen"


def test_without_demo_there_is_no_simulator(make_service: Callable[..., Service]) -> None:
    service = make_service(Settings(llm_base_url=None), demo=False)
    assert "llm-sim" not in [c.name for c in service.components] and service.settings.llm_base_url is None


def test_the_exchange_simulator_takes_a_demo_secret_that_starts_with_a_dash(
        make_service: Callable[..., Service], monkeypatch: pytest.MonkeyPatch) -> None:
    """token_urlsafe starts with "-" one time in 64; argparse must not read it as an option."""
    from tacore.exchange_sim.server import build_parser

    monkeypatch.setattr("secrets.token_urlsafe", lambda n=None: "-looks-like-an-option")
    service = make_service(Settings(), demo=True)
    sim = next(c for c in service.components if c.name == "exchange-sim")
    args = build_parser().parse_args(sim.args[0])
    assert args.alpaca_secret_key == "-looks-like-an-option"
    assert service.settings.alpaca_api_secret_key is not None
    assert service.settings.alpaca_api_secret_key.get_secret_value() == args.alpaca_secret_key
