"""partime.comm."""
