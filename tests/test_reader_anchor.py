"""The reader's fast record-start scan finds exactly what its anchor regex finds."""

from __future__ import annotations

import random

from radar.data.reader import _ANCHOR, _anchor_starts

PIECES = [b'{"session_id": 1', b'{ "session_id" :', b'"session_id"', b'\\"session_id\\"',
          b'{\n  "session_id"\n:', b"x", b" ", b"{", b":", b'"', b"session_id", b"\t"]


def test_anchor_scan_equals_the_regex_on_random_buffers():
    rnd = random.Random(0)
    for _ in range(5000):
        buf = bytearray(b"".join(rnd.choice(PIECES) for _ in range(rnd.randrange(1, 12))))
        a, b = rnd.randrange(len(buf) + 1), rnd.randrange(len(buf) + 1)
        start, end = min(a, b), max(a, b)
        expected = [m.start() for m in _ANCHOR.finditer(buf, start, end)]
        assert _anchor_starts(buf, start, end) == expected, (bytes(buf), start, end)
