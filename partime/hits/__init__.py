"""partime.hits."""
