"""symqp.analysis (under construction)."""
