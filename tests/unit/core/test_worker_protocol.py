from __future__ import annotations

import pytest

from tacore.protocol import worker as wp


def test_request_frame_round_trips_seq_budget_and_the_client_request() -> None:
    seq = wp.pack_seq(123456789)
    body = b'{"method": "health.check"}'
    assert wp.unpack_request(wp.pack_request(seq, 2500, body)) == (seq, 2500, body)
    assert wp.unpack_request(wp.pack_request(seq, None, b"")) == (seq, None, b"")


def test_reply_frame_round_trips_status_time_code_and_the_reply() -> None:
    seq = wp.pack_seq(7)
    got_seq, ok, ms, code, body = wp.unpack_reply(wp.pack_reply(seq, False, 12.5, "INTERNAL", b'{"x": 1}'))
    assert (got_seq, ok, code, body) == (seq, False, "INTERNAL", b'{"x": 1}') and ms == pytest.approx(12.5)
    assert wp.unpack_reply(wp.pack_reply(seq, True, 0.25, None, b"{}"))[1:] == (True, 0.25, None, b"{}")


def test_malformed_frames_raise_malformed_message() -> None:
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_request(wp.REQUEST + b"short")
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_reply(wp.REPLY)
    truncated = wp.pack_reply(wp.pack_seq(1), False, 1.0, "INTERNAL", b"")[:-3]
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_reply(truncated)
