"""Analytics over stored candles: market scans, risk, technical and AI analyses (one module per idea)."""
