"""The package version (its own module: the command line reads it without importing the model)."""

__version__ = "0.1.0"
