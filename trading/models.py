"""Trading models (filled in by the detector and execution work)."""
