"""Map X server event times onto the recorder's CLOCK_MONOTONIC nanoseconds.

DESIGN 2: the X server stamps input with CLOCK_MONOTONIC milliseconds in 32 bits, and callbacks arrive
a median 34 ms (max 134 ms) later on a loaded machine, so the server time is the better event time. The
32-bit value wraps every 49.7 days; we unwrap it against the current monotonic time, and fall back to
the callback time when the mapping is implausible (a server on another machine or another clock).
"""

from __future__ import annotations

import time

_WRAP_MS = 1 << 32
# A mapped time further back than this (or in the future) means the server clock is not ours.
MAX_LAG_NS = 5_000_000_000
MAX_AHEAD_NS = 2_000_000


def server_ms_to_ns(server_ms: int, now_ns: int | None = None) -> int | None:
    """CLOCK_MONOTONIC ns of an X server timestamp, or None when it cannot be our clock.

    The server truncates to whole milliseconds, so the event happened in ``[ms, ms + 1)``; we return
    the middle of that interval (+0.5 ms) to make the expected error zero.
    """
    now_ns = time.monotonic_ns() if now_ns is None else now_ns
    now_ms = now_ns // 1_000_000
    lag_ms = (now_ms - server_ms) % _WRAP_MS
    if lag_ms > _WRAP_MS // 2:  # slightly ahead of us: treat as negative lag
        lag_ms -= _WRAP_MS
    t_ns = (now_ms - lag_ms) * 1_000_000 + 500_000
    if t_ns < now_ns - MAX_LAG_NS or t_ns > now_ns + MAX_AHEAD_NS:
        return None
    return min(t_ns, now_ns)


class EventClock:
    """Stamps events: server time when usable, else the callback's monotonic time; counts fallbacks."""

    def __init__(self) -> None:
        self.server_stamps = 0
        self.fallbacks = 0

    def stamp(self, server_ms: int | None) -> int:
        now = time.monotonic_ns()
        if server_ms is not None:
            t = server_ms_to_ns(server_ms, now)
            if t is not None:
                self.server_stamps += 1
                return t
        self.fallbacks += 1
        return now
