"""Generalist-IDM: video to timestamped input events (D2E's NEP-tau event tokens)."""
