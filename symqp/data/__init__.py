"""symqp.data (under construction)."""
