"""Training data: recordings indexed without decoding, windows on the 20 Hz grid, and their loader."""
