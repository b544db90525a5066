"""SIGNED request security as Binance checks it: the API key header, the HMAC-SHA256 signature over
the query string followed by the body, and the timestamp against the server's clock and ``recvWindow``.

The order of the checks and the codes: a missing or malformed ``X-MBX-APIKEY`` is -2014 and an unknown
key -2015 (HTTP 401); a missing ``timestamp`` or ``signature`` -1102; a malformed one -1100; a
``recvWindow`` over 60000 -1102; a wrong signature -1022; a timestamp 1 s or more ahead of the server,
or older than ``recvWindow`` (default 5000 ms), -1021 (HTTP 400).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from tacore.exchange_sim.rest import BinanceError
from tacore.exchange_sim.spot.accounts import KEY_RE, SpotAccount, SpotAccounts

MAX_RECV_WINDOW = Decimal(60_000)
DEFAULT_RECV_WINDOW = Decimal(5_000)
_SIGNATURE_PARAM = re.compile(r"(^|&)signature=[^&]*")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
_RECV_RE = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,3})?$")
_MICROS = 10**14  # a timestamp above this is in microseconds


@dataclass(frozen=True, slots=True)
class Signed:
    account: SpotAccount
    params: dict[str, str]
    timestamp_ms: int


def parse_params(query: str, body: str) -> dict[str, str]:
    """Parameters from the query string and the body; the query string wins (Binance's rule).
    A parameter twice in the same part is -1101."""
    params: dict[str, str] = {}
    for part in (body, query):
        seen: set[str] = set()
        for name, value in parse_qsl(part, keep_blank_values=True):
            if name in seen:
                raise BinanceError(-1101, "Duplicate values for a parameter detected.")
            seen.add(name)
            params[name] = value
    return params


def signature_payload(query: str, body: str) -> str:
    """What the signature covers: the query string and then the body, each without ``signature``."""
    return _SIGNATURE_PARAM.sub("", query).lstrip("&") + _SIGNATURE_PARAM.sub("", body).lstrip("&")


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def api_key_account(accounts: SpotAccounts, header: str | None) -> SpotAccount:
    if header is None or not KEY_RE.match(header):
        raise BinanceError(-2014, "API-key format invalid.", 401)
    account = accounts.get(header)
    if account is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return account


def verify(accounts: SpotAccounts, api_key: str | None, query: str, body: str, server_ms: int, *,
           trade: bool) -> Signed:
    """The account a SIGNED request acts for, or the BinanceError to answer it with."""
    account = api_key_account(accounts, api_key)
    params = parse_params(query, body)
    for name in ("timestamp", "signature"):
        if not params.get(name):
            raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    raw_ts = params["timestamp"]
    if not _INT_RE.match(raw_ts):
        raise BinanceError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.")
    window = DEFAULT_RECV_WINDOW
    if "recvWindow" in params:
        raw_window = params["recvWindow"]
        if not _RECV_RE.match(raw_window):
            raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'; legal range is "
                                      "'^[0-9]{1,5}(\\.[0-9]{1,3})?$'.")
        try:
            window = Decimal(raw_window)
        except InvalidOperation:
            raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
        if window > MAX_RECV_WINDOW:
            raise BinanceError(-1102, "'recvWindow' contains unexpected value. Cannot be greater than 60000.")
    expected = sign(account.secret, signature_payload(query, body))
    if not hmac.compare_digest(expected, params["signature"].lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    stamp = int(raw_ts)
    timestamp_ms = Decimal(stamp) / 1000 if stamp > _MICROS else Decimal(stamp)
    if timestamp_ms >= server_ms + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp_ms > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    if trade and not account.can_trade:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return Signed(account, params, int(timestamp_ms))
