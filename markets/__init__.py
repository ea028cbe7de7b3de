"""Exchanges, markets, order books, venue feeds, the simulated venues and the engine."""
