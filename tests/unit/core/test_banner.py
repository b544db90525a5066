"""What ``tacore serve`` prints: the ready banner's lines for each setup, and a closing summary whose
figures come from the broker's counters and per-method stats, user and internal apart."""

from __future__ import annotations

from tacore.banner import ReadyFacts, closing_summary, ready_banner


def facts(**overrides: object) -> ReadyFacts:
    base: dict[str, object] = dict(
        version="9.9", startup_s=3.2, client_endpoint="tcp://127.0.0.1:5555", worker_endpoint="tcp://127.0.0.1:5556",
        events_endpoint="tcp://127.0.0.1:5557", workers=["w1", "w2"], dashboard_url="http://127.0.0.1:8000/",
        docs_url="http://127.0.0.1:8000/docs", api_key=False, data_dir="/srv/data", log_dir="/srv/logs",
        request_log="SQLite /srv/data/tacoreservice.db", candles="embedded chDB", data_agent=True,
        symbols=["BTCUSDT", "ETHUSDT"], source="wss://stream.binance.com:9443",
        subscriptions_file="/srv/data/data-agent/subscriptions.json")
    base.update(overrides)
    return ReadyFacts(**base)  # type: ignore[arg-type]


def test_the_banner_lists_endpoints_urls_directories_and_symbols() -> None:
    text = ready_banner(facts())
    assert "TACore 9.9 is ready (3.2 s)" in text
    for part in ("tcp://127.0.0.1:5555", "2 here (w1, w2)", "tacore worker --connect tcp://THIS_HOST:5556",
                 "http://127.0.0.1:8000/docs", "/srv/data", "/srv/logs", "BTCUSDT, ETHUSDT (2 symbols)",
                 "subscriptions persist across restarts in /srv/data/data-agent/subscriptions.json"):
        assert part in text, part


def test_the_banner_says_what_is_off_and_shortens_long_symbol_lists() -> None:
    many = [f"S{i:03d}USDT" for i in range(40)]
    text = ready_banner(facts(dashboard_url=None, docs_url=None, symbols=many, api_key=True))
    assert "off (--no-api)" in text and "API docs" not in text
    assert "S011USDT and 28 more (40 symbols)" in text and "S012USDT" not in text
    assert "streaming" not in ready_banner(facts(data_agent=False))
    assert "asks for API_KEY" in ready_banner(facts(api_key=True))


def test_the_closing_summary_counts_user_and_internal_requests_apart() -> None:
    status = {"counters": {"timeout": 2, "busy": 1, "refused_stopping": 3, "invalid_request": 4, "unknown_method": 5,
                           "worker_lost": 6, "redispatched": 7, "deduped": 8, "reply_undeliverable": 9},
              "request_log": {"shipped": 1234, "dropped": 0}}
    metrics = {"methods": {"health.check": {"count": 10, "success": 9}, "kline.history": {"count": 5, "success": 5}},
               "internal_methods": {"kline.status": {"count": 7, "success": 7}}}
    text = closing_summary(status, metrics, uptime_s=3725, stop_s=1.26, restarts={"workers": 2})
    assert text.startswith("TACore stopped after 1h02m05s (the orderly stop took 1.3 s):")
    assert "15 from clients (14 succeeded, 1 answered with an error); 7 more were TACore's own" in text
    assert "2 passed their deadline in the queue, 1 refused BUSY (queue full), 3 refused while stopping" in text
    assert "4 unreadable (INVALID_REQUEST), 5 for a method no worker serves" in text
    assert "6 requests lost with a worker that died (WORKER_LOST), 7 re-run" in text
    assert "8 repeated request_ids" in text and "9 (the client had gone)" in text
    assert "1,234 rows sent to the recorder, 0 dropped" in text and "workers 2x" in text


def test_the_closing_summary_without_a_broker_says_so() -> None:
    text = closing_summary(None, None, uptime_s=5, stop_s=0.1, restarts={})
    assert "the broker never answered" in text and "restarts              none" in text
