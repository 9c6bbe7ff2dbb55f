"""Analysis: the bridge to :mod:`analyzers` (scipy loaded lazily), live scores, one service."""
