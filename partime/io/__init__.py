"""partime.io."""
