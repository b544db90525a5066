"""Alpaca's market-data API v2 for US equities, simulated: historical bars over REST and the real-time
bars stream, with Alpaca's formats, keys, rate limit and error codes, on NYSE sessions.

Served by ``ExchangeSimulator`` on two ports of its own (``alpaca_rest_url``, ``alpaca_stream_url``);
see docs/exchange-sim.md.
"""
