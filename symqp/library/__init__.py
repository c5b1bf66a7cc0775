"""symqp.library (under construction)."""
