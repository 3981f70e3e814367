"""partime.steppers."""
