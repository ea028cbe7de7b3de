"""Portfolio models (filled in by the execution work)."""
