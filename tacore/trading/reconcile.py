"""Start-up reconciliation: the ledger's open orders checked against their venues, records completed.

After a kill -9 between sending an order and recording the venue's answer, the order is ``accepted``
in the ledger. Each venue is asked by client order id: what it reports (acknowledged, filled,
canceled...) is applied, fills recorded once; an order the venue never received is ``rejected`` with
that reason and never sent again. Open orders the venue knows better (filled while TACore was down)
are brought up to date the same way. A venue that cannot be reached is asked again later (the order
process's clock tick) -- nothing is sent twice either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tacore.trading.engine import OrderEngine
from tacore.trading.model import OrderStatus
from tacore.trading.venues import SimulatedVenue, VenueError

log = logging.getLogger("tacore.orders")


@dataclass
class ReconcileSummary:
    checked: int = 0
    updated: int = 0  # the venue knew more than the ledger: applied
    unsent: int = 0  # accepted but never received by the venue: rejected
    unreachable: int = 0  # the venue could not say: asked again later
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"reconciled {self.checked} open order(s): {self.updated} updated from their venue, "
                f"{self.unsent} never received (rejected), {self.unreachable} left for later")


def reconcile(engine: OrderEngine) -> ReconcileSummary:
    summary = ReconcileSummary()
    for order in engine.open_orders():
        venue = engine.venues.get(order.account)
        if venue is None:
            summary.notes.append(f"order {order.id}: account {order.account} is no longer configured")
            continue
        if isinstance(venue, SimulatedVenue) and order.status is not OrderStatus.ACCEPTED:
            continue  # its book was rebuilt from the ledger: nothing to ask
        summary.checked += 1
        try:
            report = venue.query(order)  # not under the engine's lock: the venue may be slow to answer
        except VenueError as exc:
            summary.unreachable += 1
            summary.notes.append(f"order {order.id} ({order.client_order_id}): {venue.name}: {exc}")
            continue
        if report is None:
            if order.status is OrderStatus.ACCEPTED:
                engine.reject_unsent(order, "not received by the venue: the order process stopped before "
                                            "the venue had it; it was not sent again")
                summary.unsent += 1
            else:
                summary.notes.append(f"order {order.id} ({order.client_order_id}) is {order.status} here "
                                     f"but {venue.name} does not know it")
            continue
        if engine.apply_report(order, report):
            summary.updated += 1
    engine.flush()
    for note in summary.notes:
        log.warning("reconciliation: %s", note)
    log.info("%s", summary.line())
    return summary
