"""symqp.systems (under construction)."""
