"""Regression backends (imported as symqp.backends)."""
