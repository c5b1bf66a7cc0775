"""symqp.decompose (under construction)."""
