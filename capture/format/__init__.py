"""The native recording format (MCAP + msgpack batches) and its OWAMcap codec."""

from .reader import RecordingReader
from .writer import RecordingWriter

__all__ = ["RecordingReader", "RecordingWriter"]
