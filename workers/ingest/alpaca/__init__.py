"""The data agent's second feed: US equities from Alpaca's market-data API v2.

Minute bars from the real-time stream, the six longer intervals from Alpaca's own REST aggregates as
each bucket closes, history and gaps from REST with paging and Alpaca's rate limit; the same candle
rows, price-cache updates and ``DATA_READY`` events as the Binance feed. See docs/market-data.md.
"""
