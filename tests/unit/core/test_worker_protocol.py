from __future__ import annotations

import pytest

from tacore.protocol import worker as wp


def test_request_frame_round_trips_every_entry_in_order() -> None:
    entries: list[wp.RequestEntry] = [(123456789, 2500, b'{"method": "health.check"}'), (7, None, b""),
                                      (2**64 - 1, 0, b"x" * 70_000)]
    assert wp.unpack_requests(wp.pack_requests(entries)) == entries


def test_a_budget_out_of_range_is_clamped_not_taken_for_no_deadline() -> None:
    frame = wp.pack_requests([(1, -5, b"a"), (2, 2**40, b"b")])
    assert [budget for _, budget, _ in wp.unpack_requests(frame)] == [0, wp.NO_DEADLINE - 1]


def test_reply_frame_round_trips_status_time_code_and_each_reply() -> None:
    entries: list[wp.ReplyEntry] = [(7, False, 12.5, "INTERNAL", b'{"x": 1}'), (8, True, 0.25, None, b"{}"),
                                    (9, True, 1.0, None, b"")]
    got = list(wp.iter_replies(wp.pack_replies(entries)))
    assert [(s, ok, code, body) for s, ok, _, code, body in got] == [(s, ok, c, b) for s, ok, _, c, b in entries]
    assert [ms for _, _, ms, _, _ in got] == pytest.approx([12.5, 0.25, 1.0])  # sent as f32


@pytest.mark.parametrize("frame", [
    pytest.param(wp.REQUEST, id="no-entry"),
    pytest.param(wp.REQUEST + b"short", id="short-header"),
    pytest.param(wp.pack_requests([(1, 5, b"abcdef")])[:-2], id="short-body"),
    pytest.param(wp.pack_requests([(1, 5, b"ok")]) + b"\x01\x02", id="trailing-garbage"),
])
def test_malformed_request_frames_raise_malformed_message(frame: bytes) -> None:
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_requests(frame)


def test_replies_before_a_malformed_entry_are_delivered_then_it_raises() -> None:
    good = wp.pack_replies([(1, True, 0.1, None, b"{}"), (2, True, 0.1, None, b"{}")])
    truncated = wp.pack_replies([(3, False, 1.0, "INTERNAL", b"body")])[len(wp.REPLY):-3]
    replies = wp.iter_replies(good + truncated)
    assert [next(replies)[0], next(replies)[0]] == [1, 2]
    with pytest.raises(wp.MalformedMessage):
        next(replies)
    with pytest.raises(wp.MalformedMessage):
        list(wp.iter_replies(wp.REPLY))


def test_cancel_frame_round_trips_seq_kind_and_reason_cut_to_255_bytes() -> None:
    entries: list[wp.CancelEntry] = [(5, wp.CANCEL_DEADLINE, ""), (2**64 - 1, wp.CANCEL_PREEMPT, "flow 7 first"),
                                     (9, wp.CANCEL_CLIENT, "é" * 200)]
    got = wp.unpack_cancels(wp.pack_cancels(entries))
    assert got[:2] == entries[:2]
    assert got[2][:2] == (9, wp.CANCEL_CLIENT) and len(got[2][2].encode()) <= 255


@pytest.mark.parametrize("frame", [
    pytest.param(wp.CANCEL, id="no-entry"),
    pytest.param(wp.CANCEL + b"\x01\x02", id="short-header"),
    pytest.param(wp.pack_cancels([(1, wp.CANCEL_CLIENT, "reason")])[:-2], id="short-reason"),
])
def test_malformed_cancel_frames_raise_malformed_message(frame: bytes) -> None:
    with pytest.raises(wp.MalformedMessage):
        wp.unpack_cancels(frame)


def test_handback_frame_carries_the_stuck_seq_and_the_returned_ones() -> None:
    assert wp.unpack_handback(wp.pack_handback(41, [42, 43, 2**64 - 1])) == (41, [42, 43, 2**64 - 1])
    assert wp.unpack_handback(wp.pack_handback(0, [])) == (0, [])
    for bad in (wp.HANDBACK, wp.pack_handback(1, [2])[:-1]):
        with pytest.raises(wp.MalformedMessage):
            wp.unpack_handback(bad)


def test_every_command_shares_the_taw4_header_and_a_distinct_byte() -> None:
    commands = list(wp.COMMAND_NAMES)
    assert all(c.startswith(b"TAW4") and len(c) == wp.COMMAND_LENGTH for c in commands)
    assert len(set(commands)) == len(commands) == 7
