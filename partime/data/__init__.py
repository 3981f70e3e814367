"""partime.data."""
