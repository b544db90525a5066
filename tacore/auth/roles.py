"""Which role a client key needs to call a method: one declarative table, a default, and declarations.

Roles are ordered: ``read`` < ``trade`` < ``admin``; a key may call every method whose role is at
or below its own. The role a method requires is, in this order:

1. its entry in ``METHOD_ROLES`` by exact name, raised to the role its workers declare if that is
   higher (a declaration never lowers a listed method);
2. else the role its workers declare at registration (``@registry.method(..., role="trade")``);
3. else the entry of the longest family prefix (``"order.*"``) that covers it;
4. else ``DEFAULT_ROLE``.

So a new method gets the role it declares, a new ``order.*`` method that forgets to declare one is
still ``trade``, and a read-only member of such a family says ``role="read"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final = {Role.READ: 1, Role.TRADE: 2, Role.ADMIN: 3}

#: The role of a method nothing else names: reading market data, health, analytics.
DEFAULT_ROLE: Final = Role.READ

#: Methods (or families, ``prefix.*``) that need more than ``read``.
METHOD_ROLES: Final[Mapping[str, Role]] = {
    # trading: places or changes orders
    "execute.order": Role.TRADE,
    "order.*": Role.TRADE,
    "flow.*": Role.TRADE,  # flows may place orders; a read-only flow method declares role="read"
    # operating the service: what the data agent ingests; the broker's internals (workers, hosts, pids and the
    # request ids in flight, which a retry could join)
    "broker.status": Role.ADMIN,
    "broker.preempt": Role.ADMIN,  # the flow scheduler's; a client cancels its own call with broker.cancel (read)
    "broker.report": Role.ADMIN,  # TACore's processes telling the broker what they observe (/health reads it)
    "kline.add_stream": Role.ADMIN,
    "kline.add_symbols": Role.ADMIN,
    "kline.remove_stream": Role.ADMIN,
}


def parse_role(value: str) -> Role:
    """A role by name; ValueError naming the valid ones otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


class RoleTable:
    """The rules above over one table; ``required`` is pure and cheap (a dict lookup, a few prefixes)."""

    def __init__(self, roles: Mapping[str, Role] = METHOD_ROLES, default: Role = DEFAULT_ROLE) -> None:
        self.default = default
        self.exact = {name: role for name, role in roles.items() if not name.endswith(".*")}
        # longest first, so "order.algo.*" wins over "order.*"
        self.families = sorted(((name[:-1], role) for name, role in roles.items() if name.endswith(".*")),
                               key=lambda item: -len(item[0]))

    def required(self, method: str, declared: Role | None = None) -> Role:
        listed = self.exact.get(method)
        if listed is not None:
            return listed if declared is None or declared.rank <= listed.rank else declared
        if declared is not None:
            return declared
        for prefix, role in self.families:
            if method.startswith(prefix):
                return role
        return self.default
