"""Errors of the trading domain: a broken invariant is a bug to stop at, never a state to store."""

from __future__ import annotations

from tacore.errors import InternalError


class OrderStateError(InternalError):
    """A transition the order's state machine does not allow (a terminal state changing, an overfill)."""
