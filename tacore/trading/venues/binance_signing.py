"""Binance API keys and request signing: HMAC-SHA256 of the query string with the secret key.

Both halves of a key pair are secrets (Binance: "Both API key and secret key are sensitive"): they are
held as ``SecretStr`` (``repr`` and ``str`` print stars), read from the environment only, never put in
a message, a log record or an exception. A signature is not the secret, but it authorises its request
for ``recvWindow``: ``redact_query`` masks it wherever a query string is logged, and ``QueryRedactor``
does the same for the records httpx logs of each request it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass

from pydantic import SecretStr

_SIGNATURE = re.compile(r"(signature=)[0-9A-Fa-f]+")
REDACTED = "***"


@dataclass(frozen=True, slots=True)
class BinanceCredentials:
    api_key: SecretStr
    api_secret: SecretStr
    #: where they came from (the variable names, never the values): for messages
    source: str = "the environment"

    @classmethod
    def from_env(cls, key_var: str = "BINANCE_API_KEY", secret_var: str = "BINANCE_API_SECRET",
                 environ: dict[str, str] | None = None) -> BinanceCredentials | None:
        """The key pair in ``key_var`` / ``secret_var``; None when either is unset or blank."""
        env = os.environ if environ is None else environ
        key, secret = (env.get(key_var) or "").strip(), (env.get(secret_var) or "").strip()
        if not key or not secret:
            return None
        return cls(SecretStr(key), SecretStr(secret), f"{key_var} / {secret_var}")

    def sign(self, payload: str) -> str:
        """The hex HMAC-SHA256 of ``payload`` (the query string, then the body) with the secret key."""
        return hmac.new(self.api_secret.get_secret_value().encode(), payload.encode(), hashlib.sha256).hexdigest()

    def header(self) -> dict[str, str]:
        return {"X-MBX-APIKEY": self.api_key.get_secret_value()}

    def scrub(self, text: str) -> str:
        """``text`` with either half of the key pair (if it somehow got in) and any signature masked."""
        for secret in (self.api_key.get_secret_value(), self.api_secret.get_secret_value()):
            text = text.replace(secret, REDACTED)
        return redact_query(text)


def redact_query(text: str) -> str:
    """Mask every ``signature=<hex>`` in ``text``."""
    return _SIGNATURE.sub(r"\1" + REDACTED, text)


class QueryRedactor(logging.Filter):
    """Masks signatures in the messages of the records it sees (installed on httpx's logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact_query(a) if isinstance(a, str) else _redact_url(a) for a in record.args) \
                if isinstance(record.args, tuple) else record.args
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


def _redact_url(value: object) -> object:
    """httpx passes the request URL as an object: its text with the signature masked."""
    text = str(value)
    return redact_query(text) if "signature=" in text else value


def install_httpx_redaction() -> None:
    """Mask signatures in httpx's request log (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, QueryRedactor) for f in logger.filters):
        logger.addFilter(QueryRedactor())
