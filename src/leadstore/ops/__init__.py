"""Operability: health, readiness, metrics and structured logs."""
