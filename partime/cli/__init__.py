"""The ``partime`` command line."""
