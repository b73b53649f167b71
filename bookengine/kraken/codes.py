"""Numbers both implementations agree on: frame kinds, line formats, the reader's stop codes.

The compiled core (``bookengine._core``) and the pure-Python reference
(``bookengine._reference``) import these from here, so they are peers and the session never
hard-codes a number.
"""

from __future__ import annotations

# -- what the scanner says a frame is ---------------------------------------------------------

KIND_OTHER = 0
"""Not a book frame: control frames, trades, heartbeats... (the session's Python path)."""
KIND_BOOK = 1
"""A v2 ``book`` frame."""
KIND_LEVEL3 = 2
"""A v2 ``level3`` frame."""
KIND_V1_BOOK = 3
"""A v1 book frame (``[channelID, {...}, "book-N", "PAIR"]``)."""

# -- line formats the reader understands ------------------------------------------------------

LINES_KRAKEN = 0
"""bookengine's own captures: a bare frame, or ``recv_ts_ns<TAB>frame`` (other time forms,
headers, checkpoints and sent requests go to the capture layer)."""
LINES_TARDIS = 1
"""tardis.dev raw data-feed slices: ``2023-07-30T15:30:00.0292860Z <frame>``; a blank line is
a disconnect."""
LINES_CRYPTOFEED = 2
"""cryptofeed raw recordings: ``<unix time>: <frame>``; its header and sent-request lines go
to the capture layer."""

# -- why the reader stopped (``BookRouter.apply_lines``) ---------------------------------------

STOP_END = 0
"""Every line was consumed."""
STOP_HANDOFF = 1
"""A frame for the session's Python path (consumed; see ``span_start``/``span_stop``)."""
STOP_MISMATCH = 2
"""A routed book's message was applied but its checksum failed (consumed; see ``failure``)."""
STOP_CROSSED = 3
"""A routed L2 book's message was applied and left the book crossed (consumed)."""
STOP_LINE = 4
"""A line that is not a received frame in this format: the capture layer's (consumed)."""
STOP_APPLIED = 5
"""A book message was applied to a book whose events are wanted (consumed; see ``applied``)."""
STOP_TIME = 6
"""The next line was received after the time limit (not consumed)."""
