"""partime.mgopt."""
