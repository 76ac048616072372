"""The reader's fast record-start scan finds exactly what its anchor regex finds."""

from __future__ import annotations

import random

import pytest

from radar.data.reader import _ANCHOR, _anchor_starts

PIECES = [b'{"session_id": 1', b'{ "session_id" :', b'"session_id"', b'\\"session_id\\"',
          b'{\n  "session_id"\n:', b"x", b" ", b"{", b":", b'"', b"session_id", b"\t"]
# Runs of braces that start no record, so the scan switches to searching for the key.
BRACES = [b"{{", b"{" * 9, b'"session_id":', b"{ "]


@pytest.mark.parametrize("pieces, seed, buffers, most_pieces", [
    (PIECES, 0, 5000, 12),                  # random buffers
    (PIECES + BRACES, 1, 20000, 20),        # among many braces
])
def test_anchor_scan_equals_the_regex(pieces, seed, buffers, most_pieces):
    rnd = random.Random(seed)
    for _ in range(buffers):
        buf = bytearray(b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, most_pieces))))
        a, b = rnd.randrange(len(buf) + 1), rnd.randrange(len(buf) + 1)
        start, end = min(a, b), max(a, b)
        expected = [m.start() for m in _ANCHOR.finditer(buf, start, end)]
        assert _anchor_starts(buf, start, end) == expected, (bytes(buf), start, end)
