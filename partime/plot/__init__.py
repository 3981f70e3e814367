"""partime.plot."""
