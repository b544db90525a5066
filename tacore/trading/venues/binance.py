"""The Binance spot venue: TACore's orders on Binance's REST API (or anything that speaks it: the
testnet, TACore's exchange simulator), named ``binance`` in ``trading_config.yaml``.

- ``submit`` checks the order against the symbol's ``exchangeInfo`` filters before anything is sent
  (``FILTER``), then ``POST /api/v3/order`` with ``newClientOrderId`` = TACore's client order id and
  ``newOrderRespType=FULL``: the answer's fills are recorded at once.
- Exactly once: an order request is never sent twice. When its answer is lost (a timeout, a dropped
  connection, a 5xx) the venue asks for the order by client order id (``GET /api/v3/order
  ?origClientOrderId=``); a ``Duplicate order sent.`` means the first request got through and is
  answered the same way. "Not found" is only believed once the request can no longer arrive: its
  timestamp is older than ``recvWindow`` (the exchange refuses it after that); until then the outcome
  stays unknown and reconciliation asks again later.
- Fills come from the order answers and ``GET /api/v3/myTrades`` (by ``tradeId``, so one reported
  twice is recorded once). Binance takes the commission from what the order receives (the base asset
  on a buy): it is reported in the quote asset at the fill's price, as TACore's fills carry it.
- Binance has no day orders: ``day`` limit and stop orders are refused (a market order takes any time
  in force). TACore's ``stop`` is ``STOP_LOSS``, ``stop_limit`` is ``STOP_LOSS_LIMIT``.
- The key pair comes from the environment (``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``, or the
  variables the account's ``options`` name); the REST URL from ``EXCHANGE_REST_URL`` (or
  ``options.rest_url``). Nothing here is simulator-specific.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tacore.errors import ConfigError
from tacore.trading.accounts import AccountConfig
from tacore.trading.model import Liquidity, Order, OrderStatus, OrderType, TimeInForce
from tacore.trading.model.money import ZERO, mul
from tacore.trading.venues import VenueContext
from tacore.trading.venues.base import VenueBalance, VenueError, VenueErrorCode, VenueFill, VenueReport
from tacore.trading.venues.binance_errors import BinanceApiError, TransportFailure, venue_error
from tacore.trading.venues.binance_filters import BINANCE_TYPES, FilterViolation, SymbolRules, wire
from tacore.trading.venues.binance_rest import BinanceRestClient, MissingCredentials
from tacore.trading.venues.binance_signing import BinanceCredentials
from tacore.trading.venues.paper import QuoteSource

log = logging.getLogger("tacore.venues.binance")

DEFAULT_REST_URL = "https://api.binance.com"
_STATUSES = {
    "NEW": OrderStatus.NEW, "PENDING_NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED, "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_TIME_IN_FORCE = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
#: how long after its timestamp plus recvWindow an order request is known never to be carried out: the
#: exchange checks recvWindow again before its matching engine gets the request, whose own timeout is
#: 10 s (-1007), plus a second for the error in our clock offset
SETTLE_MARGIN_MS = 11_000
_TRADES_PAGE = 1_000


class BinanceOptions(BaseModel):
    """An account's ``options`` for the binance venue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key_env: str = Field("BINANCE_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_secret_env: str = Field("BINANCE_API_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: overrides EXCHANGE_REST_URL for this account (e.g. https://testnet.binance.vision)
    rest_url: str | None = None
    recv_window_ms: int = Field(5_000, ge=1, le=60_000)
    timeout_s: float = Field(10.0, gt=0, le=60)
    #: a 429 asking to wait at most this long is waited out and the request sent again
    max_wait_s: float = Field(2.0, ge=0, le=30)
    #: how long a symbol's exchangeInfo rules are trusted before they are fetched again
    rules_ttl_s: float = Field(3_600.0, gt=0)
    #: an order Binance does not know is believed never placed this long after its request's recvWindow
    settle_margin_ms: int = Field(SETTLE_MARGIN_MS, ge=0, le=600_000)


class BinanceVenue:
    name = "binance"
    remote = True

    def __init__(self, account: str, client: BinanceRestClient, *, quotes: QuoteSource | None = None,
                 rules_ttl_s: float = 3_600.0, settle_margin_ms: int = SETTLE_MARGIN_MS,
                 clock: Callable[[], float] = time.time) -> None:
        self.account = account
        self.client = client
        self.quotes = quotes
        self.rules_ttl_s = rules_ttl_s
        self.settle_margin_ms = settle_margin_ms
        self._clock = clock
        self._rules: dict[str, tuple[float, SymbolRules]] = {}
        #: local ms when each order request was last sent (orders sent before this process: its start)
        self._sent_ms: dict[str, int] = {}
        self._started_ms = client.local_ms()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"BinanceVenue(account={self.account!r}, url={self.client.base_url!r})"

    def close(self) -> None:
        self.client.close()

    # -- the Venue protocol -----------------------------------------------------------------------------
    def submit(self, order: Order) -> VenueReport:
        with self._lock:
            params = self._order_params(order)
            self._sent_ms[order.client_order_id] = self.client.local_ms()
            try:
                body = self._call("POST", "/api/v3/order", params)
            except BinanceApiError as exc:
                if exc.duplicate_order:
                    log.warning("order %s: Binance already has client order id %s (an earlier request got "
                                "through): answering with that order", order.id, order.client_order_id)
                    found = self._lookup(order)
                    if found is not None:
                        return found
                if exc.code == -1013:
                    self._rules.pop(order.symbol, None)  # the rules may have changed: fetch them again
                error = self._error(exc, changes_state=True)
                if error.outcome_unknown:  # a 5xx / -1007: "execution status unknown"
                    return self._after_lost_answer(order, f"HTTP {exc.status} {exc.code} {exc.msg}")
                raise error from None
            except TransportFailure as exc:
                if not exc.sent:
                    raise self._error(exc, changes_state=True) from None
                return self._after_lost_answer(order, str(exc))
            return self._report(order, body)

    def cancel(self, order: Order) -> VenueReport:
        with self._lock:
            params = {"symbol": order.symbol, "origClientOrderId": order.client_order_id}
            try:
                body = self._call("DELETE", "/api/v3/order", params)
            except (BinanceApiError, TransportFailure) as exc:
                raise self._error(exc, changes_state=True) from None
            return self._report(order, body)

    def query(self, order: Order) -> VenueReport | None:
        with self._lock:
            return self._lookup(order)

    def open_orders(self, account: str) -> list[VenueReport]:
        with self._lock:
            try:
                rows = self._call("GET", "/api/v3/openOrders", {})
            except (BinanceApiError, TransportFailure) as exc:
                raise self._error(exc, changes_state=False) from None
            return [self._report(None, row) for row in rows]

    def balances(self, account: str) -> list[VenueBalance]:
        with self._lock:
            try:
                body = self._call("GET", "/api/v3/account", {"omitZeroBalances": "true"})
            except (BinanceApiError, TransportFailure) as exc:
                raise self._error(exc, changes_state=False) from None
            return [VenueBalance(str(b["asset"]), Decimal(b["free"]), Decimal(b["locked"])) for b in body["balances"]]

    # -- asking by client order id ----------------------------------------------------------------------------
    def _lookup(self, order: Order) -> VenueReport | None:
        """The exchange's view of ``order``; None only once the order can no longer arrive there."""
        params = {"symbol": order.symbol, "origClientOrderId": order.client_order_id}
        try:
            body = self._call("GET", "/api/v3/order", params)
        except BinanceApiError as exc:
            if exc.code != -2013:
                raise self._error(exc, changes_state=False) from None
            if not self._settled(order):
                raise VenueError(VenueErrorCode.UNAVAILABLE,
                                 f"Binance does not know order {order.client_order_id} yet, and its request may "
                                 f"still arrive (recvWindow {self.client.recv_window_ms} ms): ask again later",
                                 outcome_unknown=True, venue_code=exc.code) from None
            return None
        except TransportFailure as exc:
            raise self._error(exc, changes_state=False) from None
        return self._report(order, body)

    def _settled(self, order: Order) -> bool:
        """Whether a request for ``order`` sent before now can no longer be accepted: its timestamp is more
        than recvWindow old (a request from before this process started is no later than its start)."""
        sent = self._sent_ms.get(order.client_order_id, self._started_ms)
        return self.client.local_ms() > sent + self.client.recv_window_ms + self.settle_margin_ms

    def _after_lost_answer(self, order: Order, detail: str) -> VenueReport:
        log.warning("order %s (%s): %s; asking Binance for it by client order id", order.id,
                    order.client_order_id, detail)
        try:
            found = self._lookup(order)
        except VenueError as exc:
            raise VenueError(VenueErrorCode.UNAVAILABLE, f"the answer to the order request was lost ({detail}) "
                             f"and Binance cannot say yet whether it has the order ({exc.message}); "
                             "reconciliation asks by client order id, it is never sent again",
                             outcome_unknown=True) from None
        if found is None:  # the request timed out so long ago that it can no longer be carried out
            raise VenueError(VenueErrorCode.UNAVAILABLE, f"the order request got no answer ({detail}) and "
                             "Binance does not have the order; it can no longer arrive", outcome_unknown=False)
        return found

    # -- building and reading ---------------------------------------------------------------------------------
    def _order_params(self, order: Order) -> dict[str, str]:
        kind = BINANCE_TYPES[order.type.value]
        if order.type is not OrderType.MARKET and order.time_in_force not in _TIME_IN_FORCE:
            raise VenueError(VenueErrorCode.REJECTED, f"Binance spot has no {order.time_in_force} orders: give a "
                             f"{order.type} order time_in_force gtc, ioc or fok")
        rules = self._symbol_rules(order.symbol)
        if rules.status != "TRADING":
            raise VenueError(VenueErrorCode.REJECTED, f"{order.symbol} is not trading on Binance ({rules.status})")
        if kind not in rules.order_types:
            raise VenueError(VenueErrorCode.REJECTED, f"Binance does not take {kind} orders for {order.symbol}")
        last = None
        if order.type is OrderType.MARKET and self.quotes is not None:
            quote = self.quotes.quote(order.symbol)
            last = quote.price if quote is not None else None
        try:
            rules.check(order_type=kind, qty=order.qty, limit_price=order.limit_price, stop_price=order.stop_price,
                        last_price=last)
        except FilterViolation as exc:
            raise VenueError(VenueErrorCode.FILTER, f"{order.symbol} {exc} (checked before sending)") from None
        params = {"symbol": order.symbol, "side": order.side.value.upper(), "type": kind}
        if kind in ("LIMIT", "STOP_LOSS_LIMIT"):
            params["timeInForce"] = _TIME_IN_FORCE[order.time_in_force]
        params["quantity"] = wire(order.qty)
        if order.limit_price is not None:
            params["price"] = wire(order.limit_price)
        if order.stop_price is not None:
            params["stopPrice"] = wire(order.stop_price)
        params["newClientOrderId"] = order.client_order_id
        params["newOrderRespType"] = "FULL"
        return params

    def _symbol_rules(self, symbol: str) -> SymbolRules:
        cached = self._rules.get(symbol)
        now = self._clock()
        if cached is not None and now - cached[0] < self.rules_ttl_s:
            return cached[1]
        try:
            body = self.client.public("GET", "/api/v3/exchangeInfo", {"symbol": symbol})
        except BinanceApiError as exc:
            if exc.code == -1121:
                raise VenueError(VenueErrorCode.REJECTED, f"Binance does not list {symbol}", venue_code=exc.code) \
                    from None
            raise self._error(exc, changes_state=False) from None
        except TransportFailure as exc:
            raise self._error(exc, changes_state=False) from None
        entries = [e for e in body.get("symbols", []) if e.get("symbol") == symbol]
        if not entries:
            raise VenueError(VenueErrorCode.REJECTED, f"Binance does not list {symbol}")
        rules = SymbolRules.from_exchange_info(entries[0])
        self._rules[symbol] = (now, rules)
        return rules

    def _report(self, order: Order | None, body: dict[str, Any]) -> VenueReport:
        """A VenueReport from an order answer (new, query, cancel, open orders), with every fill so far."""
        raw_status = str(body.get("status", "NEW"))
        status = _STATUSES.get(raw_status)
        if status is None:
            raise VenueError(VenueErrorCode.UNAVAILABLE, f"Binance answered an unknown order status {raw_status!r}")
        executed = Decimal(str(body.get("executedQty", "0")))
        symbol = str(body.get("symbol", order.symbol if order is not None else ""))
        ts = int(body.get("updateTime") or body.get("transactTime") or body.get("time") or self.client.server_ms())
        fills: list[VenueFill] = []
        if executed > 0:
            assets = self._assets(symbol, order)
            for fill in body.get("fills", ()):
                fills.append(self._fill(assets, fill["price"], fill["qty"], fill["commission"],
                                        fill["commissionAsset"], str(fill["tradeId"]), Liquidity.TAKER, ts))
            if executed > sum((f.qty for f in fills), ZERO):
                fills = self._trades(assets, symbol, int(body["orderId"]))
        kind = str(body.get("type", ""))
        triggered = kind.startswith("STOP_LOSS") and (bool(body.get("isWorking")) or executed > 0)
        reason = None
        if status is OrderStatus.EXPIRED:
            reason = f"expired at Binance ({body.get('expiryReason') or 'unfilled ' + str(body.get('timeInForce'))})"
        elif status is OrderStatus.CANCELED:
            reason = "canceled at Binance"
        client_id = str(body.get("origClientOrderId") or body.get("clientOrderId") or
                        (order.client_order_id if order is not None else ""))
        return VenueReport(client_id, status, ts, str(body.get("orderId")), executed, tuple(fills), reason, triggered)

    def _assets(self, symbol: str, order: Order | None) -> tuple[str, str]:
        """(base, quote) of ``symbol``: from the order when it knows its quote asset, else exchangeInfo."""
        if order is not None and order.quote_asset and symbol.endswith(order.quote_asset):
            return symbol[: -len(order.quote_asset)], order.quote_asset
        rules = self._symbol_rules(symbol)
        return rules.base_asset, rules.quote_asset

    def _trades(self, assets: tuple[str, str], symbol: str, order_id: int) -> list[VenueFill]:
        """Every trade of one order (``GET /api/v3/myTrades``, paged by trade id)."""
        fills: list[VenueFill] = []
        params: dict[str, Any] = {"symbol": symbol, "orderId": order_id, "limit": _TRADES_PAGE}
        while True:
            try:
                rows = self._call("GET", "/api/v3/myTrades", params)
            except (BinanceApiError, TransportFailure) as exc:
                raise self._error(exc, changes_state=False) from None
            for row in rows:
                fills.append(self._fill(assets, row["price"], row["qty"], row["commission"], row["commissionAsset"],
                                        str(row["id"]), Liquidity.MAKER if row.get("isMaker") else Liquidity.TAKER,
                                        int(row["time"])))
            if len(rows) < _TRADES_PAGE:
                return fills
            params = {**params, "fromId": int(rows[-1]["id"]) + 1}

    def _fill(self, assets: tuple[str, str], price: Any, qty: Any, commission: Any, asset: Any, fill_id: str,
              liquidity: Liquidity, ts: int) -> VenueFill:
        price_d, qty_d, fee = Decimal(str(price)), Decimal(str(qty)), Decimal(str(commission))
        base_asset, quote_asset = assets
        if fee and asset != quote_asset:
            if asset == base_asset:
                fee = mul(fee, price_d)
            else:
                fee = self._fee_in_quote(fee, str(asset), quote_asset, fill_id)
        return VenueFill(fill_id, qty_d, price_d, fee, liquidity, ts)

    def _fee_in_quote(self, fee: Decimal, asset: str, quote_asset: str, fill_id: str) -> Decimal:
        """A commission paid in a third asset (BNB) at TACore's latest price for it; 0 without one."""
        quote = self.quotes.quote(f"{asset}{quote_asset}") if self.quotes is not None else None
        if quote is None:
            log.warning("trade %s: commission %s %s has no %s%s price here; recorded as 0", fill_id, fee, asset,
                        asset, quote_asset)
            return ZERO
        return mul(fee, quote.price)

    # -- calls and errors --------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        try:
            return self.client.signed(method, path, params)
        except MissingCredentials as exc:
            raise VenueError(VenueErrorCode.AUTH, str(exc)) from None

    def _error(self, exc: BinanceApiError | TransportFailure, *, changes_state: bool) -> VenueError:
        error = venue_error(exc, changes_state=changes_state)
        if error.code is VenueErrorCode.CLOCK_SKEW:
            error.message += f" (even after resyncing: offset {self.client.offset_ms} ms)"
        return error


_DEFAULT_KEY_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


def _settings_credentials(settings: Any) -> BinanceCredentials | None:
    """The key pair the service settings hold (BINANCE_API_KEY / BINANCE_API_SECRET read from a ``.env``
    file, or the demo's key pair for its exchange simulator)."""
    key, secret = getattr(settings, "binance_api_key", None), getattr(settings, "binance_api_secret", None)
    if not isinstance(key, SecretStr) or not isinstance(secret, SecretStr):
        return None
    if not key.get_secret_value().strip() or not secret.get_secret_value().strip():
        return None
    return BinanceCredentials(key, secret, "BINANCE_API_KEY / BINANCE_API_SECRET (settings)")


def create_venue(account: AccountConfig, context: VenueContext) -> BinanceVenue:
    """The venue of one ``venue: binance`` account (``tacore.trading.venues.build_venues``)."""
    try:
        options = BinanceOptions.model_validate(account.options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"account {account.name}: binance options: {problems}") from None
    settings_url = getattr(context.settings, "exchange_rest_url", None) if context.settings is not None else None
    url = options.rest_url or settings_url or DEFAULT_REST_URL
    credentials = BinanceCredentials.from_env(options.api_key_env, options.api_secret_env)
    if credentials is None and (options.api_key_env, options.api_secret_env) == _DEFAULT_KEY_VARS:
        credentials = _settings_credentials(context.settings)
    hint = (f"account {account.name}: no Binance API key pair: set {options.api_key_env} and "
            f"{options.api_secret_env}")
    if credentials is None:
        log.warning("%s; its orders will be rejected", hint)
    else:
        log.info("binance venue for account %s at %s (keys from %s)", account.name, url, credentials.source)
    client = BinanceRestClient(url, credentials, missing_hint=hint, recv_window_ms=options.recv_window_ms,
                               timeout_s=options.timeout_s, max_wait_s=options.max_wait_s)
    return BinanceVenue(account.name, client, quotes=context.quotes, rules_ttl_s=options.rules_ttl_s,
                        settle_margin_ms=options.settle_margin_ms)
