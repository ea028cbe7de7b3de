"""Opportunities, trades, their legs and fills; the detector and execution."""
