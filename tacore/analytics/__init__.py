"""Analytics over the stored candles: market scans, portfolio risk, technical and AI analysis.

Domain code only: these modules read candles through a ``CandleReader`` (the candle store) and never
import ZeroMQ, FastAPI or the worker runtime; the method handlers in ``workers/methods`` call them.
"""
