"""Capture: recording, the recording format, game sources and the training-data layer."""

__version__ = "0.1.0"
