"""Signing and secret handling of the Binance venue: Binance's documented HMAC example, keys that never
print, signatures masked in anything logged."""

from __future__ import annotations

import logging

from tacore.trading.venues.binance_signing import BinanceCredentials, QueryRedactor, redact_query

# Binance's own example (rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order", HMAC keys)
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
               "&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_signature_matches_binance_documented_hmac_example() -> None:
    creds = BinanceCredentials.from_env(environ={"BINANCE_API_KEY": DOC_KEY, "BINANCE_API_SECRET": DOC_SECRET})
    assert creds is not None
    assert creds.sign(DOC_PAYLOAD) == DOC_SIGNATURE
    assert creds.header() == {"X-MBX-APIKEY": DOC_KEY}


def test_credentials_never_print_either_half_of_the_key_pair() -> None:
    creds = BinanceCredentials.from_env("K", "S", environ={"K": DOC_KEY, "S": DOC_SECRET})
    assert creds is not None
    for text in (repr(creds), str(creds), f"{creds}", repr(creds.api_key), str(creds.api_secret)):
        assert DOC_KEY not in text and DOC_SECRET not in text
    assert creds.source == "K / S"  # the variable names, never the values


def test_missing_or_blank_variables_give_no_credentials() -> None:
    assert BinanceCredentials.from_env(environ={}) is None
    assert BinanceCredentials.from_env(environ={"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "  "}) is None


def test_scrub_masks_the_key_pair_and_signatures() -> None:
    creds = BinanceCredentials.from_env(environ={"BINANCE_API_KEY": DOC_KEY, "BINANCE_API_SECRET": DOC_SECRET})
    assert creds is not None
    text = f"key {DOC_KEY} secret {DOC_SECRET} q=a=1&signature={DOC_SIGNATURE}"
    scrubbed = creds.scrub(text)
    assert DOC_KEY not in scrubbed and DOC_SECRET not in scrubbed and DOC_SIGNATURE not in scrubbed
    assert scrubbed.endswith("signature=***")


def test_redactor_masks_signatures_in_log_records_and_their_arguments() -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s",
                               ("GET", f"http://x/api/v3/order?a=1&signature={DOC_SIGNATURE}"), None)
    QueryRedactor().filter(record)
    assert DOC_SIGNATURE not in record.getMessage() and "signature=***" in record.getMessage()
    assert redact_query("timestamp=1&signature=ABCdef0123") == "timestamp=1&signature=***"
