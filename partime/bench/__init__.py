"""partime.bench."""
