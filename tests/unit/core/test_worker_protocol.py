from __future__ import annotations

import pytest

from tacore.protocol import worker as wp


def test_request_command_round_trips_seq_and_budget() -> None:
    seq = wp.pack_seq(123456789)
    assert wp.unpack_request(wp.pack_request(seq, 2500)) == (seq, 2500)
    assert wp.unpack_request(wp.pack_request(seq, None)) == (seq, None)


def test_reply_command_round_trips_status_time_and_code() -> None:
    seq = wp.pack_seq(7)
    got_seq, ok, ms, code = wp.unpack_reply(wp.pack_reply(seq, False, 12.5, "INTERNAL"))
    assert (got_seq, ok, code) == (seq, False, "INTERNAL") and ms == pytest.approx(12.5)
    assert wp.unpack_reply(wp.pack_reply(seq, True, 0.25))[1:] == (True, 0.25, None)


def test_malformed_command_frames_raise_malformed_message() -> None:
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_request(wp.REQUEST + b"short")
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_reply(wp.REPLY)
