"""Storage: the request log (SQLAlchemy), the candle store (ClickHouse/chDB) and the latest-price cache."""
