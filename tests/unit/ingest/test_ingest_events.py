"""DATA_READY events on a real PUB socket: topic, body fields, prefix filtering."""

from __future__ import annotations

import time

import zmq

from tacore.events import DATA_READY, EventPublisher, EventSubscriber, data_ready_topic
from tacore.local_ports import server_port


def free_port() -> int:
    return server_port()  # below the ephemeral range (tacore.local_ports)


def test_data_ready_reaches_a_subscriber_with_the_contract_fields() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = EventPublisher(endpoint, context=ctx)
    subscriber = EventSubscriber(endpoint, ("kline.BTCUSDT.",), context=ctx)
    try:
        candle = {"symbol": "BTCUSDT", "interval": "1m", "open_time": 0, "closed": True}
        deadline = time.monotonic() + 3
        got = None
        while got is None and time.monotonic() < deadline:  # slow joiner: publish until one arrives
            publisher.data_ready("ETHUSDT", "1m", {**candle, "symbol": "ETHUSDT"}, 5)
            publisher.data_ready("BTCUSDT", "1m", candle, 7)
            got = subscriber.recv(50)
        assert got is not None
        topic, body = got
        assert topic == data_ready_topic("BTCUSDT", "1m") == "kline.BTCUSDT.1m"
        assert body["event"] == DATA_READY and body["symbol"] == "BTCUSDT" and body["interval"] == "1m"
        assert body["candle"] == candle and body["ts_event"] == 7 and body["ts_publish"] > 0
        while (more := subscriber.recv(20)) is not None:
            assert more[0].startswith("kline.BTCUSDT.")
    finally:
        subscriber.close()
        publisher.close()
        ctx.term()
