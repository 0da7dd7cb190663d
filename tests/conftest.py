"""Shared fixtures: small recordings made on the fly (tests never download or ship data)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s synthetic recording (events + 320x240 video); read-only for tests."""
    from capture.synthetic import write_synthetic_recording

    return write_synthetic_recording(tmp_path_factory.mktemp("sample") / "sample.mcap", seconds=3.0)
