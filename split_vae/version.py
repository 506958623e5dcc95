"""The version of split_vae (one place: the package and the preset metadata read it)."""

__version__ = "0.1.0"
