"""Where a ``venue: binance`` account gets its key pair and URL: the environment, the settings (a ``.env``
file, the demo's simulator account), its ``options``; ``tacore serve --demo`` gives the simulator's
account a fresh key pair and the settings the same one, kept secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from tacore.errors import ConfigError
from tacore.markets import load_markets
from tacore.service import Service
from tacore.settings import Settings
from tacore.trading.accounts import AccountConfig, Accounts
from tacore.trading.instruments import Instruments
from tacore.trading.model import Portfolio
from tacore.trading.prices import PriceBook
from tacore.trading.venues import VenueContext, build_venues
from tacore.trading.venues.binance import BinanceVenue, create_venue

KEY, SECRET = "k" * 64, "s" * 64


@pytest.fixture(autouse=True)
def no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "OTHER_KEY", "OTHER_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _venue(options: dict[str, Any] | None = None, settings: Any = None) -> BinanceVenue:
    account = AccountConfig(name="live", venue="binance", options=options or {})
    context = VenueContext(Accounts([account], "live"), Instruments(load_markets()), Portfolio(), PriceBook(), settings)
    venue = create_venue(account, context)
    venue.close()
    return venue


def _key(venue: BinanceVenue) -> str | None:
    credentials = venue.client._credentials
    return None if credentials is None else credentials.api_key.get_secret_value()


def test_the_key_pair_comes_from_the_environment_before_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(binance_api_key=SecretStr("x" * 64), binance_api_secret=SecretStr("y" * 64),
                        exchange_rest_url="http://127.0.0.1:9/")
    assert _key(_venue(settings=settings)) == "x" * 64
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    venue = _venue(settings=settings)
    assert _key(venue) == KEY and venue.client.base_url == "http://127.0.0.1:9"


def test_an_account_naming_its_own_variables_uses_only_those(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(binance_api_key=SecretStr("x" * 64), binance_api_secret=SecretStr("y" * 64))
    options = {"api_key_env": "OTHER_KEY", "api_secret_env": "OTHER_SECRET", "rest_url": "http://127.0.0.1:8"}
    assert _key(_venue(options, settings)) is None  # never another account's keys
    monkeypatch.setenv("OTHER_KEY", KEY)
    monkeypatch.setenv("OTHER_SECRET", SECRET)
    venue = _venue(options, settings)
    assert _key(venue) == KEY and venue.client.base_url == "http://127.0.0.1:8"


def test_without_settings_the_exchange_is_binance_and_bad_options_are_a_config_error() -> None:
    assert _venue().client.base_url == "https://api.binance.com"
    with pytest.raises(ConfigError, match="recv_window_ms"):
        _venue({"recv_window_ms": 120_000})
    with pytest.raises(ConfigError, match="api_secret: Extra inputs are not permitted") as refused:
        _venue({"api_secret": SECRET})  # a secret in the file is refused: keys come from the environment
    assert SECRET not in str(refused.value)


def test_the_packaged_config_has_a_binance_account_built_as_a_binance_venue() -> None:
    from tacore.trading.accounts import load_accounts

    accounts = load_accounts()
    assert accounts.for_venue("binance").name == "binance" and accounts.default == "paper"
    venues = build_venues(VenueContext(accounts, Instruments(load_markets()), Portfolio(), PriceBook(), Settings()))
    assert isinstance(venues["binance"], BinanceVenue) and venues["paper"].name == "paper"
    venues["binance"].close()  # type: ignore[attr-defined]


@pytest.fixture
def demo_service() -> Iterator[Service]:
    service = Service(Settings(), demo=True)
    yield service
    service.client.close()


def test_the_demo_gives_the_simulator_s_account_a_fresh_key_pair_and_the_settings_the_same(
        demo_service: Service) -> None:
    sim = next(c for c in demo_service.components if c.name == "exchange-sim")
    argv: list[str] = sim.args[0]
    options = dict(arg.split("=", 1) for arg in argv if arg.startswith("--spot-api-"))  # --opt=value
    key, secret = options["--spot-api-key"], options["--spot-api-secret"]
    settings = demo_service.settings
    assert settings.binance_api_key is not None and settings.binance_api_key.get_secret_value() == key
    assert settings.binance_api_secret is not None and settings.binance_api_secret.get_secret_value() == secret
    assert len(key) == len(secret) == 64 and key != secret
    assert settings.exchange_rest_url == f"http://127.0.0.1:{argv[argv.index('--rest-port') + 1]}"
    assert key not in repr(settings) and secret not in repr(settings)
