from __future__ import annotations

from pathlib import Path

import pytest

from tacore.errors import ConfigError
from tacore.settings import load_settings


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("zmq_frontend_port: 6001\nworker_count: 3\nlog_level: debug\n")
    monkeypatch.setenv("TACORE_CONFIG", str(config))
    monkeypatch.setenv("WORKER_COUNT", "5")
    monkeypatch.setenv("TACORESERVICE_ENV", "production")
    settings = load_settings()
    assert settings.zmq_frontend_port == 6001
    assert settings.worker_count == 5
    assert settings.log_level == "DEBUG"
    assert settings.env == "production"


def test_bad_value_stops_start_up_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZMQ_FRONTEND_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="ZMQ_FRONTEND_PORT"):
        load_settings()


def test_unknown_yaml_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("zmq_frontend_prot: 6001\n")
    monkeypatch.setenv("TACORE_CONFIG", str(config))
    with pytest.raises(ConfigError, match="ZMQ_FRONTEND_PROT"):
        load_settings()


def test_clashing_ports_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZMQ_BACKEND_PORT", "5555")
    with pytest.raises(ConfigError, match="ZMQ_BACKEND_PORT and ZMQ_FRONTEND_PORT"):
        load_settings()


def test_sidecar_stays_on_loopback_without_api_key() -> None:
    assert load_settings(api_host="0.0.0.0").api_bind_host == "127.0.0.1"
    assert load_settings(api_host="0.0.0.0", api_key="k").api_bind_host == "0.0.0.0"


def test_health_reports_go_to_the_frontend_of_the_broker_a_remote_worker_connects_to() -> None:
    assert load_settings(zmq_frontend_port=6555).report_endpoint == "tcp://127.0.0.1:6555"
    remote = load_settings(broker_connect="tcp://broker.internal:5556", zmq_frontend_port=5555)
    assert remote.report_endpoint == "tcp://broker.internal:5555"
