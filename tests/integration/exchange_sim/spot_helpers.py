"""A raw signed client of the simulator's spot API (hmac by hand, not the venue's client), and fresh
accounts per test."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from typing import Any
from urllib.parse import urlencode

import httpx

_ALNUM = string.ascii_letters + string.digits


def new_key() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(64))


class RawSpot:
    """Signs like Binance's documentation: HMAC-SHA256 over the query string, hex, appended last."""

    def __init__(self, rest_url: str, api_key: str, secret: str, *, offset_ms: int = 0) -> None:
        self.http = httpx.Client(base_url=rest_url, timeout=10)
        self.api_key = api_key
        self.secret = secret
        self.offset_ms = offset_ms
        self.fresh_time = False  # ask /api/v3/time before every signed request (a fast simulated clock)
        self.recv_window: int | None = None  # sent with every signed request that does not name its own

    def close(self) -> None:
        self.http.close()

    def now(self) -> int:
        if self.fresh_time:
            return int(self.http.get("/api/v3/time").json()["serverTime"])
        return int(time.time() * 1000) + self.offset_ms

    def query(self, params: dict[str, Any], *, timestamp: int | None = None, recv_window: int | None = None) -> str:
        stamped = {**params, "timestamp": self.now() if timestamp is None else timestamp}
        recv_window = self.recv_window if recv_window is None else recv_window
        if recv_window is not None:
            stamped["recvWindow"] = recv_window
        q = urlencode(stamped)
        return f"{q}&signature={hmac.new(self.secret.encode(), q.encode(), hashlib.sha256).hexdigest()}"

    def call(self, method: str, path: str, *, key: str | None = None, body: bool = False,
             timestamp: int | None = None, recv_window: int | None = None, **params: Any) -> httpx.Response:
        q = self.query(params, timestamp=timestamp, recv_window=recv_window)
        headers = {"X-MBX-APIKEY": self.api_key if key is None else key}
        if body:
            return self.http.request(method, path, content=q, headers={
                **headers, "Content-Type": "application/x-www-form-urlencoded"})
        return self.http.request(method, f"{path}?{q}", headers=headers)

    def ok(self, method: str, path: str, **params: Any) -> Any:
        response = self.call(method, path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def add_account(rest_url: str, balances: dict[str, str], **extra: Any) -> tuple[str, str]:
    """A new account on the simulator: (API key, secret)."""
    key, secret = new_key(), new_key()
    response = httpx.post(f"{rest_url}/_sim/spot/account",
                          json={"api_key": key, "secret_key": secret, "balances": balances, **extra})
    assert response.status_code == 200, response.text
    return key, secret


def ground_truth(rest_url: str, api_key: str) -> dict[str, Any]:
    response = httpx.get(f"{rest_url}/_sim/spot/account", params={"api_key": api_key})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data
