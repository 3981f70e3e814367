"""partime.dynamics."""
