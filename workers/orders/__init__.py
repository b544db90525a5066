"""The order process: the order engine served to the broker, fed with candles and the clock."""
