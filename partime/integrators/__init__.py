"""partime.integrators."""
