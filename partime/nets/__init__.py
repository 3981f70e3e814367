"""partime.nets."""
