"""partime.io: files written atomically (the bottom layer: imports nothing from partime)."""

from partime.io.atomic import atomic_save, atomic_write, atomic_write_with

__all__ = ["atomic_save", "atomic_write", "atomic_write_with"]
