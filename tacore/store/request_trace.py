"""What the request log keeps of a call besides its figures: its params, secrets redacted, and its error message.

The broker ships each record with the request as it arrived (an ``orjson.Fragment`` of the frame it
already parsed, or its size when over ``REQUEST_SHIP_LIMIT``) and, for an error, the reply; the recorder
turns them into the ``params`` and ``error_message`` columns here, off the broker's loop. A value whose
name says it is a secret (``api_key``, ``secret``, ``password``, ``signature``, ``token``...) is kept as
``"***"``, and so is the password in any URL (``scheme://user:***@host``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: A request frame larger than this is not shipped to the recorder, only its size.
REQUEST_SHIP_LIMIT = 16_384
#: The longest params JSON kept (a longer one is kept as a cut string under ``_truncated``).
PARAMS_LIMIT = 4_000
MESSAGE_LIMIT = 1_000
REDACTED = "***"
_SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "signature", "token", "apikey", "privatekey",
                 "credential", "authorization", "cookie")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@\s:]*):[^/@\s]*@", re.IGNORECASE)


def is_secret(name: str) -> bool:
    """Whether a field called ``name`` holds a secret: its name ends in ``key`` or names one of the words."""
    plain = name.lower().replace("_", "").replace("-", "")
    return plain.endswith("key") or plain in ("sig", "pwd", "auth") or any(w in plain for w in _SECRET_WORDS)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text) if "://" in text else text


def redact(value: Any) -> Any:
    """``value`` with every secret-named field's value replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and is_secret(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def params_column(request: Any) -> str | None:
    """The ``params`` column from a shipped request: redacted JSON, bounded in size."""
    if request is None:
        return None
    if isinstance(request, int):
        return orjson.dumps({"_omitted": f"a request of {request} bytes"}).decode()
    params = request.get("params") if isinstance(request, dict) else None
    text = orjson.dumps(redact(params if isinstance(params, dict) else {})).decode()
    if len(text) > PARAMS_LIMIT:
        text = orjson.dumps({"_truncated": text[:PARAMS_LIMIT]}).decode()
    return text


def error_column(reply: Any) -> str | None:
    """The ``error_message`` column from a shipped error reply (its ``error.message``, and the field and message of
    each of its ``details`` when they have them), redacted and bounded."""
    if reply is None:
        return None
    message: Any = reply
    if isinstance(reply, str):
        try:
            parsed = orjson.loads(reply)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
            message = str(error.get("message", reply))
            fields = [f"{d.get('field') or '-'}: {d.get('message')}" for d in error.get("details") or []
                      if isinstance(d, dict) and d.get("message")] if isinstance(error.get("details"), list) else []
            if fields:  # INVALID_PARAMS: which fields, and why
                message += " (" + "; ".join(fields) + ")"
    return redact_text(str(message))[:MESSAGE_LIMIT]
