"""Binance's spot trading REST API on the simulator: accounts per API key, SIGNED request security,
exchangeInfo filters, a matching engine that fills against the simulator's own price path, Binance's
request limits and error codes, and control routes for tests. See docs/exchange-sim.md."""
