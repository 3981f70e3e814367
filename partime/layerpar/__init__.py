"""partime.layerpar."""
