"""symqp.result (under construction)."""
