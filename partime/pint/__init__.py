"""partime.pint."""
