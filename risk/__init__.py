"""Risk profiles, the kill switch and pre-trade checks."""
