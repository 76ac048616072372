"""Streaming reader for day files: JSON arrays of session objects, or JSON Lines.

Day files run to 1.6 GB, so nothing here loads a whole file. The fast path reads
1 MB chunks into one reused buffer and finds record starts with a regex anchor,
``{`` + whitespace + ``"session_id"`` + whitespace + ``:``. That anchor cannot occur
inside a JSON string (a quote there is always escaped), so it only matches a real
record start, in compact and indented layouts alike. All complete records of a chunk
are decoded by one typed msgspec call that skips the fields nobody asked for
(``original_logs`` above all, without even checking its UTF-8); the zero padding of
token lists nobody asked for is cut out of a copy first, since msgspec would walk it
number by number. A chunk whose typed decode fails is redone record by record to name
and count each bad record exactly.
Where the anchors cannot split the file (records that do not start with
``session_id``, or a top-level array of something else) ijson reads on: slower,
still streaming, same checks.

Every yielded record is a dict with the decoded fields plus ``_index`` (position in
the file, counting bad records) and ``_offset`` (byte offset of its ``{``; None where
ijson had to take over), which :func:`read_record_at` accepts later.
"""

from __future__ import annotations

import functools
import gc
import os
import re
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Annotated, Any

import ijson
import msgspec

from radar.data.records import (
    ALL_FIELDS,
    INVALID_UTF8,
    LONG_SEQUENCE,
    MAX_EVENT_ID,
    OPTIONAL_FIELDS,
    ORIGINAL_LOGS_INVALID_UTF8,
    REQUIRED_FIELDS,
    SESSION_ID_RANGE,
    TOO_DEEP,
    TOO_DEEP_DETAIL,
    WRONG_TYPE,
    BadRecord,
    ReadReport,
    RecordLimits,
    check_optional,
    check_record,
    check_tokens,
)
from radar.errors import DataError

try:  # Python 3.10 has these only in typing_extensions
    from typing import NotRequired, Required, TypedDict
except ImportError:  # pragma: no cover
    from typing_extensions import NotRequired, Required, TypedDict

try:
    import ijson.backends.yajl2_c as ijson_backend
except ImportError:  # pragma: no cover - the C backend is missing on some platforms
    ijson_backend = ijson

DEFAULT_FIELDS = REQUIRED_FIELDS + ("session_key",)
TOKEN_FIELDS = ("token_ids", "attention_mask")
CHUNK_SIZE = 1 << 20

_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_ANCHOR = re.compile(rb'\{[ \t\r\n]*"session_id"[ \t\r\n]*:')
_ANCHOR_MAX = 64          # rescan this many bytes at a chunk end: an anchor may be cut there
_ANCHOR_KEY = b'"session_id"'
_BRACE_MISSES = 8       # braces in a row that start no record before searching for the key
_OPEN, _COLON = 0x7B, 0x3A
_PAD_KEYS = {"token_ids": b'"token_ids": [', "attention_mask": b'"attention_mask": ['}
_PAD_RUN = b", 0" * 16   # how the zero padding of a compact token list begins
_ZEROS = memoryview(b", 0" * 4096)     # longer runs stay for the decoder to skip
_ONES = memoryview(b"1" + b", 1" * 4095)
_MASK_AFTER_TOKENS = b'], "attention_mask": [1'
_DIGITS = b"0123456789"
_EVENT_SEQUENCE = itemgetter("event_sequence")
_FIX_HINT = ("fix or remove the record in the source file, or run without --strict to skip "
             "and count bad records")
# batch_check(records) -> {position in records: (kind, detail)} for the bad ones
BatchCheck = Callable[[list], dict]


# ---------------------------------------------------------------- typed decoders

_EventId = Annotated[int, msgspec.Meta(ge=0, le=MAX_EVENT_ID)]
_FIELD_TYPES: dict[str, Any] = {
    "session_id": Annotated[int, msgspec.Meta(ge=SESSION_ID_RANGE[0], le=SESSION_ID_RANGE[1])],
    "event_sequence": Annotated[list[_EventId], msgspec.Meta(min_length=1)],
    "has_error": bool,
    "has_warn": bool,
    "service_name": str,
    "token_ids": list[int] | None,
    "attention_mask": list[int] | None,
    "session_key": str | None,
    "original_logs": list[str] | None,
}


@functools.lru_cache(maxsize=32)
def _decoders(optional: tuple[str, ...], raw_fields: tuple[str, ...], vocab_size: int | None):
    """(list decoder, single-record decoder) for a TypedDict of the wanted fields.

    A TypedDict decodes straight into a dict and skips unknown fields without even
    validating their UTF-8, which is what makes reading only some fields cheap.
    """
    fields: dict[str, Any] = {name: Required[_FIELD_TYPES[name]] for name in REQUIRED_FIELDS}
    for name in optional:
        kind = _FIELD_TYPES[name]
        if name == "token_ids" and vocab_size is not None:
            kind = list[Annotated[int, msgspec.Meta(ge=0, lt=vocab_size)]] | None
        fields[name] = NotRequired[msgspec.Raw if name in raw_fields else kind]
    session_type = TypedDict("Session", fields, total=False)
    return msgspec.json.Decoder(list[session_type]), msgspec.json.Decoder(session_type)


def _anchor_starts(buf: bytearray, start: int, end: int) -> list[int]:
    """Where ``_ANCHOR`` matches within ``buf[start:end]``, found several times as fast.

    ``bytearray.find(b"{")`` is a memchr, many GB/s, and in most day files the next
    ``{`` or the one after starts the next record: ``_ANCHOR.match`` right there confirms
    it. After ``_BRACE_MISSES`` braces in a row that start no record (log text full of
    them, say), a search for the next ``"session_id"`` takes over (about one per record:
    inside a string its quotes would be escaped), checked by a look either side for the
    ``{`` and the ``:``, so brace-heavy text costs a bounded number of calls per record.
    """
    found, find, match, key_length = [], buf.find, _ANCHOR.match, len(_ANCHOR_KEY)
    at, misses = start, 0
    while True:
        brace = find(b"{", at, end)
        if brace == -1:
            return found
        anchor = match(buf, brace, end)
        if anchor is not None:
            found.append(brace)
            at, misses = anchor.end(), 0
            continue
        misses += 1
        if misses < _BRACE_MISSES:
            at = brace + 1
            continue
        misses = 0
        key = find(_ANCHOR_KEY, brace + 1, end)
        if key == -1:
            return found
        before = key - 1
        while before >= start and buf[before] in _WHITESPACE:
            before -= 1
        after = key + key_length
        while after < end and buf[after] in _WHITESPACE:
            after += 1
        if before >= start and buf[before] == _OPEN and after < end and buf[after] == _COLON:
            found.append(before)
            at = after + 1
        else:
            at = key + key_length


def _padding_holes(buf: bytearray, start: int, stop: int, keys: tuple) -> list[tuple[int, int]]:
    """Spans of ``buf[start:stop]`` that are only the zero padding ending a list that is
    the value of one of ``keys`` (``b'"token_ids": ['``, say): ``, 0, 0, ... 0`` runs of at
    least 16 zeros, after a digit and right before the list's ``]``. When the attention
    mask is among ``keys`` and follows such a list as ``], "attention_mask": [1, ..., 1,
    0, ..., 0]``, the span reaches to its ``]``: the mask goes, the token list ends there.

    Cutting such a run out (``[5, 0, 0]`` becomes ``[5]``) keeps valid JSON valid and
    invalid JSON invalid: the run holds no quote or backslash, so strings keep their
    bounds, and the number before it ends there either way; the mask cut with it is a
    whole member. The ``"key": [`` before the run, with no other ``[`` between, cannot lie
    inside a string (the quote ending the key is unescaped), so in valid JSON only that
    key's list (and the mask) change.
    """
    holes, find = [], buf.find
    mask_too = _PAD_KEYS["attention_mask"] in keys
    at = find(_PAD_RUN, start, stop)
    while at != -1:
        closing = find(b"]", at, stop)
        if closing == -1:
            break
        opening = buf.rfind(b"[", start, at)
        if (opening != -1 and buf[at - 1] in _DIGITS and _zero_run_at(buf, at, closing)
                and buf.endswith(keys, start, opening + 1)):
            if mask_too and buf.startswith(_MASK_AFTER_TOKENS, closing):
                closing = _mask_end(buf, closing + len(_MASK_AFTER_TOKENS) - 1, stop, closing)
            holes.append((at, closing))
        at = find(_PAD_RUN, closing, stop)
    return holes


def _zero_run_at(buf: bytearray, at: int, end: int) -> bool:
    """Whether ``buf[at:end]`` is ``, 0`` repeated."""
    return not (end - at) % 3 and end - at <= len(_ZEROS) and buf.startswith(_ZEROS[:end - at],
                                                                               at)


def _mask_end(buf: bytearray, first: int, stop: int, otherwise: int) -> int:
    """The ``]`` of the mask ``1, ..., 1, 0, ..., 0]`` from ``first``, else ``otherwise``."""
    run, closing = buf.find(b", 0", first, stop), buf.find(b"]", first, stop)
    ones = run - first
    if (run == -1 or closing < run or ones % 3 != 1 or ones > len(_ONES)
            or not buf.startswith(_ONES[:ones], first) or not _zero_run_at(buf, run, closing)):
        return otherwise
    return closing


def _decode_text(decoder: Any, piece: bytes) -> Any:
    """``decoder.decode(piece)``, with text that is not UTF-8 raising UnicodeDecodeError
    whichever msgspec decodes it: up to 0.22 it raises that itself, from 0.23 on a
    DecodeError saying "Invalid UTF-8"; the reader tells bad text from broken JSON by it."""
    try:
        return decoder.decode(piece)
    except msgspec.DecodeError as error:
        if isinstance(error, msgspec.ValidationError) or "UTF-8" not in str(error):
            raise
        raise UnicodeDecodeError("utf-8", b"", 0, 1, str(error)) from error


_ANY_DECODER = msgspec.json.Decoder()


def _decode_any(piece: bytes) -> Any:
    """Untyped decode; bytes that are not UTF-8 become U+FFFD instead of failing."""
    try:
        return _decode_text(_ANY_DECODER, piece)
    except UnicodeDecodeError:
        return _ANY_DECODER.decode(piece.decode("utf-8", "replace").encode("utf-8"))


def _utf8_problem(piece: bytes) -> str:
    """Name the first decoded string field that holds bytes that are not UTF-8."""
    obj = _decode_any(piece)
    if isinstance(obj, dict):
        for name, value in obj.items():
            texts = value if isinstance(value, list) else [value]
            if any(isinstance(text, str) and "\ufffd" in text for text in texts):
                return f"{name} contains bytes that are not valid UTF-8"
    return "a field contains bytes that are not valid UTF-8"


class _PrefixedStream:
    """A file read from ``start`` with ``[`` put in front, so ijson sees an array again."""

    def __init__(self, handle, start: int, prefix: bytes):
        handle.seek(start)
        self.handle, self.prefix, self.position = handle, prefix, start

    def read(self, size: int = -1) -> bytes:
        if size == 0:               # ijson probes read(0) for the type: consume nothing
            return b""
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        data = self.handle.read(size)
        self.position += len(data)
        return data


def _decode_quietly(decoder: msgspec.json.Decoder, data) -> Any:
    """Decode with the cyclic GC paused: records are acyclic, and the GC passes that
    thousands of new containers trigger otherwise cost ~20% of the decode."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return decoder.decode(data)
    finally:
        if was_enabled:
            gc.enable()


class _Window:
    """One reused read buffer: ``buf[:n]`` holds the file's bytes from offset ``base``.

    Reading into the same memory (``readinto``) and decoding from a memoryview of it
    avoids the page faults and copies of fresh 1 MB bytes objects per chunk.
    """

    def __init__(self, handle):
        self.handle, self.buf, self.n, self.base, self.eof = handle, bytearray(), 0, 0, False

    def fill(self) -> None:
        """Append the next CHUNK_SIZE bytes (fewer at the end of the file)."""
        need = self.n + CHUNK_SIZE
        if len(self.buf) < need:
            self.buf.extend(bytes(max(need, 2 * len(self.buf)) - len(self.buf)))
        view = memoryview(self.buf)
        try:
            while self.n < need:
                got = self.handle.readinto(view[self.n:need])
                if not got:
                    self.eof = True
                    break
                self.n += got
        finally:
            view.release()

    def consume(self, cut: int) -> None:
        """Drop the first ``cut`` bytes (what is left is at most a record or so)."""
        self.buf[:self.n - cut] = self.buf[cut:self.n]
        self.n -= cut
        self.base += cut

    def last_non_space(self, end: int) -> int:
        k = end - 1
        while k >= 0 and self.buf[k] in _WHITESPACE:
            k -= 1
        return k


class _DayFileReader:
    """One pass over one file; yields lists of good records (one list per chunk)."""

    def __init__(self, path, fields, raw_fields, limits: RecordLimits, report: ReadReport,
                 strict: bool, with_offsets: bool, batch_check: BatchCheck | None):
        self.path, self.name = os.fspath(path), str(path)
        self.limits, self.report, self.strict = limits, report, strict
        self.with_offsets, self.batch_check = with_offsets, batch_check
        self.optional = tuple(name for name in OPTIONAL_FIELDS if name in fields)
        self.out_fields = REQUIRED_FIELDS + self.optional
        self.raw = bool(raw_fields)
        self.list_decoder, self.one_decoder = _decoders(self.optional, tuple(raw_fields),
                                                        limits.vocab_size)
        self.lean_decoder = None
        if "original_logs" in self.optional:
            lean = tuple(name for name in self.optional if name != "original_logs")
            self.lean_decoder = _decoders(lean, tuple(raw_fields), limits.vocab_size)[1]
        self.check_lists = "token_ids" in fields and "token_ids" not in raw_fields
        # token lists nobody asked for, whose zero padding the decoder need not skip
        self.pad_keys = tuple(key for name, key in _PAD_KEYS.items() if name not in fields)
        self.next_index = 0
        self.pending: DataError | None = None   # raised once the good records are out
        self.switch: int | None = None          # offset where ijson must take over

    # ------------------------------------------------------------ entry point
    def batches(self) -> Iterator[list[dict]]:
        with open(self.path, "rb") as handle:
            try:
                yield from self._read_file(_Window(handle))
            finally:
                self.report.bytes_read = handle.tell()

    def _read_file(self, window: _Window) -> Iterator[list[dict]]:
        window.fill()
        start = len(_BOM) if window.buf.startswith(_BOM) else 0
        while window.last_non_space(window.n) < start and not window.eof:
            window.fill()
        first = start
        while first < window.n and window.buf[first] in _WHITESPACE:
            first += 1
        kind = bytes(window.buf[first:min(first + 1, window.n)])
        if kind == b"[":
            yield from self._read_array(window, first)
        elif kind == b"{":
            yield from self._read_lines(window)
        elif not kind:
            self.pending = self._truncated(window.n, "the file is empty")
            yield from self._deliver([])
        else:
            raise DataError(f"the file starts with {kind!r}; expected a JSON array of "
                            "session objects ('[') or JSON Lines ('{')", file=self.name,
                            offset=first)

    def _deliver(self, goods: list[dict]) -> Iterator[list[dict]]:
        if goods:
            yield goods
        if self.pending is not None:
            raise self.pending

    def _truncated(self, offset: int, reason: str) -> DataError:
        error = DataError(
            f"the file is truncated or corrupt at byte {offset} ({reason}); "
            f"{self.report.n_records} good records before it were read. Re-copy or re-export "
            "the file; `radar prepare` keeps the good records before the damage",
            file=self.name, offset=offset)
        self.report.truncated = error
        return error

    def _bad(self, index: int, offset: int | None, kind: str, detail: str) -> None:
        self.report.add_bad(BadRecord(self.name, index, offset, kind, detail))
        if self.strict:
            self.pending = DataError(f"bad record ({kind}): {detail}; {_FIX_HINT}",
                                     file=self.name, index=index, offset=offset)

    # ------------------------------------------------------------ JSON array
    def _read_array(self, window: _Window, bracket: int) -> Iterator[list[dict]]:
        while True:
            first = bracket + 1
            while first < window.n and window.buf[first] in _WHITESPACE:
                first += 1
            if window.eof or window.n - first > _ANCHOR_MAX:
                break
            window.fill()                       # the first anchor may be cut
        if first < window.n and window.buf[first] == 0x5D:      # ']'
            after = window.last_non_space(window.n)
            if after != first:
                raise self._truncated(first + 1, "unexpected data after the closing ']'")
            return
        if first >= window.n:
            self.pending = self._truncated(window.n, "the file ends right after '['")
            yield from self._deliver([])
        if not _ANCHOR.match(window.buf, first, window.n):
            # Records that do not start with "session_id" (or no objects at all).
            yield from self._ijson_batches(window.handle, bracket, b"")
            return
        yield from self._array_chunks(window, first)

    def _array_chunks(self, window: _Window, first: int) -> Iterator[list[dict]]:
        starts, scan_from = [first], first + 1
        while True:
            found = _anchor_starts(window.buf, scan_from, window.n)
            starts += found
            scan_from = max(found[-1] + 1 if found else scan_from, window.n - _ANCHOR_MAX)
            if window.eof:
                yield from self._deliver(self._final_piece(window, starts))
            elif len(starts) > 1:
                yield from self._deliver(self._middle_piece(window, starts))
            if self.switch is not None:
                yield from self._ijson_batches(window.handle, self.switch, b"[")
                return
            if window.eof:
                return
            if len(starts) > 1:
                cut = starts[-1] - 1           # keep one byte before '{' for the '[' patch
                window.consume(cut)
                starts, scan_from = [1], max(2, scan_from - cut)
            window.fill()

    def _middle_piece(self, window: _Window, starts: list[int]) -> list[dict]:
        """Records ``starts[:-1]``; the last anchor's record is not complete yet."""
        comma = window.last_non_space(starts[-1])
        if window.buf[comma] == 0x2C:                     # ','
            records = self._decode_span(window, starts[:-1], comma)
            if records is not None and len(records) == len(starts) - 1:
                return self._accept(records, starts[:-1], window.base)
        return self._record_by_record(window, starts[:-1], starts[-1], final=False)

    def _final_piece(self, window: _Window, starts: list[int]) -> list[dict]:
        close = window.last_non_space(window.n)
        if window.buf[close] == 0x5D:                     # ']'
            records = self._decode_span(window, starts, close)
            if records is not None and len(records) == len(starts):
                return self._accept(records, starts, window.base)
            return self._record_by_record(window, starts, close, final=True)
        goods = self._record_by_record(window, starts, close + 1, final=True)
        if self.pending is None and self.switch is None:
            self.pending = self._truncated(window.base + window.n,
                                           "it ends without the closing ']'")
        return goods

    def _decode_span(self, window: _Window, starts: list[int], close: int) -> list | None:
        """Decode ``[`` + the records at ``starts`` + ``]`` in place: the byte before the
        first becomes ``[`` and the byte at ``close`` (a comma or the final ``]``) ``]``."""
        first_stop = starts[1] if len(starts) > 1 else close
        if self.pad_keys and _padding_holes(window.buf, starts[0], first_stop, self.pad_keys):
            records = self._decode_unpadded(window.buf, starts[0], close)
            if records is not None:
                return records
        buf, first = window.buf, starts[0]
        saved_open, saved_close = buf[first - 1], buf[close]
        buf[first - 1], buf[close] = 0x5B, 0x5D
        view = memoryview(buf)
        try:
            # msgspec.Raw values keep the input alive; give them bytes, not the buffer.
            data = bytes(view[first - 1:close + 1]) if self.raw else view[first - 1:close + 1]
            return _decode_quietly(self.list_decoder, data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        finally:
            data = None
            view.release()
            buf[first - 1], buf[close] = saved_open, saved_close

    def _decode_unpadded(self, buf: bytearray, first: int, close: int) -> list | None:
        """Decode a copy of the records from ``first`` to ``close`` without the zero
        padding of the token lists nobody asked for (msgspec spends ~9 ns skipping each
        padded ``, 0``, more than finding and cutting the runs costs); None if that copy
        does not decode, and the records are decoded as they are."""
        view = memoryview(buf)
        pieces, kept_from = [b"["], first
        try:
            for hole_start, hole_end in _padding_holes(buf, first, close, self.pad_keys):
                pieces.append(view[kept_from:hole_start])
                kept_from = hole_end
            pieces += [view[kept_from:close], b"]"]
            data = b"".join(pieces)
        finally:
            pieces = None           # the slices must go before the buffer may resize
            view.release()
        try:
            return _decode_quietly(self.list_decoder, data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None

    # ------------------------------------------------------------ JSON Lines
    def _read_lines(self, window: _Window) -> Iterator[list[dict]]:
        while True:
            cut = window.n if window.eof else window.buf.rfind(b"\n", 0, window.n) + 1
            if cut:
                yield from self._deliver(self._process_lines(bytes(window.buf[:cut]),
                                                             window.base))
                if window.eof:
                    return
                window.consume(cut)
            window.fill()

    def _process_lines(self, block: bytes, base: int) -> list[dict]:
        lines, offsets, position = [], [], 0
        for line in block.split(b"\n"):
            stripped = line.lstrip(_WHITESPACE)
            if stripped.rstrip(_WHITESPACE):
                lines.append(stripped)
                offsets.append(position + len(line) - len(stripped))
            position += len(line) + 1
        try:
            records = _decode_quietly(self.list_decoder, b"[" + b",".join(lines) + b"]")
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            records = None
        if records is not None and len(records) == len(lines):
            return self._accept(records, offsets, base)
        return self._decode_each(lines, [base + offset for offset in offsets], lines=True)

    # ------------------------------------------------------------ per record
    def _accept(self, records: list[dict], starts: list[int], base: int) -> list[dict]:
        """Finish a batch that decoded cleanly (the hot loop: keep it lean)."""
        problems = self.batch_check(records) if self.batch_check is not None else None
        if self.check_lists or problems:
            goods = []
            for position, (record, start) in enumerate(zip(records, starts)):
                problem = problems.get(position) if problems else None
                if self._finish(record, base + start, problem):
                    goods.append(record)
                elif self.pending is not None:
                    break
            return goods
        index, n_records = self.next_index, len(records)
        self.next_index = index + n_records
        self.report.n_records += n_records
        n_long = sum(map(self.limits.max_seq_length.__lt__,
                         map(len, map(_EVENT_SEQUENCE, records))))
        if n_long:
            self.report.notices[LONG_SEQUENCE] += n_long
        optional, full = self.optional, len(self.out_fields)
        indexes = range(index, index + n_records)
        if self.with_offsets:
            for record, index, start in zip(records, indexes, starts):
                if len(record) != full:
                    for name in optional:
                        record.setdefault(name, None)
                record["_index"] = index
                record["_offset"] = base + start
        else:
            for record, index in zip(records, indexes):
                if len(record) != full:
                    for name in optional:
                        record.setdefault(name, None)
                record["_index"] = index
        return records

    def _check_one(self, record: dict) -> tuple[str, str] | None:
        return self.batch_check([record]).get(0) if self.batch_check is not None else None

    def _finish(self, record: dict, offset: int | None, problem: tuple | None) -> bool:
        """Checks typed decoding cannot do, then the bookkeeping fields; False if bad.

        ``problem`` is what batch_check already found wrong with the record, if anything.
        """
        index = self.next_index
        self.next_index += 1
        if problem is None and self.check_lists:
            problem = check_tokens(record, self.limits)
        if problem is not None:
            self._bad(index, offset, *problem)
            return False
        if len(record["event_sequence"]) > self.limits.max_seq_length:
            self.report.notices[LONG_SEQUENCE] += 1
        for name in self.optional:
            record.setdefault(name, None)
        record["_index"] = index
        if self.with_offsets:
            record["_offset"] = offset
        self.report.n_records += 1
        return True

    def _record_by_record(self, window: _Window, starts: list[int], end: int,
                          final: bool) -> list[dict]:
        """The slow path for a chunk: cut it into records at the anchors."""
        stops = starts[1:] + [end]
        pieces, last = [], len(starts) - 1
        for i, (start, stop) in enumerate(zip(starts, stops)):
            piece = bytes(window.buf[start:stop]).rstrip(_WHITESPACE)
            if piece.endswith(b","):
                piece = piece[:-1].rstrip(_WHITESPACE)
            elif not (final and i == last):
                piece = b""                 # records must be separated by commas
            pieces.append(piece)
        return self._decode_each(pieces, [window.base + start for start in starts], lines=False)

    def _decode_each(self, pieces: list[bytes], offsets: list[int], lines: bool) -> list[dict]:
        """Decode records one by one to find and name the bad ones."""
        goods = []
        for piece, offset in zip(pieces, offsets):
            try:
                decoded = self._decode_one(piece)
            except msgspec.DecodeError as error:
                if lines:
                    self.pending = self._truncated(offset, f"not a JSON object: {error}")
                else:
                    self.switch = offset     # ijson re-reads from here, or names the damage
                break
            if isinstance(decoded, tuple):
                self._bad(self.next_index, offset, *decoded)
                self.next_index += 1
            elif self._finish(decoded, offset, self._check_one(decoded)):
                goods.append(decoded)
            if self.pending is not None:
                break
        return goods

    def _decode_one(self, piece: bytes) -> dict | tuple[str, str]:
        """A record dict, or ``(kind, detail)`` when it is bad; DecodeError if not JSON."""
        try:
            return self._decode_checked(piece)
        except RecursionError:          # msgspec follows nesting by recursion, even to skip
            return TOO_DEEP, TOO_DEEP_DETAIL

    def _decode_checked(self, piece: bytes) -> dict | tuple[str, str]:
        try:
            return _decode_text(self.one_decoder, piece)
        except msgspec.ValidationError as error:
            return self._classify(piece, error)
        except UnicodeDecodeError:
            pass
        if self.lean_decoder is None:
            return INVALID_UTF8, _utf8_problem(piece)
        # Maybe only original_logs holds the bad bytes: read the rest, repair the logs.
        try:
            record = _decode_text(self.lean_decoder, piece)
        except msgspec.ValidationError as error:
            return self._classify(piece, error)
        except UnicodeDecodeError:
            return INVALID_UTF8, _utf8_problem(piece)
        logs = _decode_any(piece).get("original_logs")
        if logs is not None and not (isinstance(logs, list)
                                     and all(isinstance(line, str) for line in logs)):
            return WRONG_TYPE, "original_logs must be an array of strings"
        record["original_logs"] = logs
        self.report.notices[ORIGINAL_LOGS_INVALID_UTF8] += 1
        return record

    def _classify(self, piece: bytes, error: msgspec.ValidationError) -> tuple[str, str]:
        problem = check_record(_decode_any(piece), self.limits)
        return problem or (WRONG_TYPE, str(error))

    # ------------------------------------------------------------ ijson fallback
    def _ijson_batches(self, handle, start: int, prefix: bytes) -> Iterator[list[dict]]:
        """Read on from ``start`` with ijson (no record offsets there); batches of 1024."""
        stream = _PrefixedStream(handle, start, prefix)
        batch: list[dict] = []
        parsed_any = False
        try:
            for item in ijson_backend.items(stream, "item", use_float=True):
                parsed_any = True
                problem = check_record(item, self.limits)
                if problem is not None:
                    self._bad(self.next_index, None, *problem)
                    self.next_index += 1
                else:
                    record = {name: item.get(name) for name in self.out_fields}
                    if self._finish(record, None, self._check_one(record)):
                        batch.append(record)
                if self.pending is not None:
                    break
                if len(batch) >= 1024:
                    yield batch
                    batch = []
        except (ijson.JSONError, ValueError) as error:
            where = stream.position if parsed_any else start
            # yajl appends a drawing of the spot ("(right here) ------^") on more lines;
            # the byte offset already says where, so keep the one-line reason.
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "parse error"
            detail = f"near there; {reason}" if parsed_any else f"JSON parser: {reason}"
            self.pending = self._truncated(where, detail)
        yield from self._deliver(batch)


def _check_fields(fields, raw_fields) -> None:
    unknown = sorted(set(fields) - set(ALL_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; available: {', '.join(ALL_FIELDS)}")
    not_raw = sorted(set(raw_fields) - set(TOKEN_FIELDS))
    if not_raw:
        raise ValueError(f"only {TOKEN_FIELDS} can be read raw, not {not_raw[0]!r}")


def iter_session_batches(path, *, fields=DEFAULT_FIELDS, raw_fields=(), strict=False,
                         max_seq_length=512, vocab_size=None, report: ReadReport | None = None,
                         with_offsets=True, batch_check: BatchCheck | None = None
                         ) -> Iterator[list[dict]]:
    """Like :func:`iter_sessions`, one list of records per chunk (the faster way to consume).

    ``raw_fields`` (a subset of :data:`TOKEN_FIELDS`) come back as ``msgspec.Raw`` JSON
    text instead of lists, for callers that can check them without building lists
    (ijson fallback regions still give lists). ``batch_check(records)`` may reject
    records after the built-in checks: it returns ``{position: (kind, detail)}``.
    """
    fields = tuple(fields) + tuple(name for name in raw_fields if name not in fields)
    _check_fields(fields, raw_fields)
    limits = RecordLimits(max_seq_length=max_seq_length, vocab_size=vocab_size,
                          fields=REQUIRED_FIELDS + fields)
    report = report if report is not None else ReadReport()
    report.file = str(path)
    reader = _DayFileReader(path, fields, tuple(raw_fields), limits, report, strict,
                            with_offsets, batch_check)
    return reader.batches()


def iter_sessions(path, *, fields=DEFAULT_FIELDS, strict=False, max_seq_length=512,
                  vocab_size=None, report: ReadReport | None = None, with_offsets=True
                  ) -> Iterator[dict]:
    """Stream the good sessions of one day file (JSON array or JSON Lines) as dicts.

    Each dict holds the required fields, the requested optional ones (None when a record
    lacks them), ``_index`` and ``_offset``. Optional fields are only decoded and checked
    when requested: add :data:`TOKEN_FIELDS` or ``"original_logs"`` to ``fields``.
    Bad records are skipped and counted in ``report`` (``strict=True``: DataError at the
    first). A truncated or corrupt file yields its good prefix, then raises DataError.
    """
    for batch in iter_session_batches(path, fields=fields, strict=strict,
                                      max_seq_length=max_seq_length, vocab_size=vocab_size,
                                      report=report, with_offsets=with_offsets):
        yield from batch



def _decode_prefix(buf: bytes, end: int, at_end: bool) -> dict | None:
    """The record in ``buf[:end]`` (less separators, or the closing ']' at the end)."""
    piece = buf[:end].rstrip(_WHITESPACE)
    if at_end and piece.endswith(b"]"):
        piece = piece[:-1].rstrip(_WHITESPACE)
    if piece.endswith(b","):
        piece = piece[:-1]
    try:
        record = _decode_any(piece)
    except (msgspec.DecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def read_record_at(path, offset: int, fields=None) -> dict:
    """Decode the one record whose ``{`` is at byte ``offset`` (an ``_offset`` from here).

    Returns the requested fields (every field of the record when ``fields`` is None);
    text that is not valid UTF-8 comes back with U+FFFD. Used to fetch original_logs
    for reports long after the pass that found the session.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        buf = handle.read(CHUNK_SIZE)
        if not buf.startswith(b"{"):
            raise DataError("no record starts here (has the file changed since it was read?)",
                            file=str(path), offset=offset)
        record, tried = None, 0
        while record is None:
            # Candidate ends: the next record's anchor, or the end of the line (JSON Lines).
            ends = {m.start() for m in _ANCHOR.finditer(buf, max(1, tried))}
            newline = buf.find(b"\n")
            if newline > 0:
                ends.add(newline)
            for end in sorted(ends):
                record = _decode_prefix(buf, end, at_end=False)
                if record is not None:
                    break
            if record is None:
                chunk = handle.read(CHUNK_SIZE)
                if not chunk:
                    record = _decode_prefix(buf, len(buf), at_end=True)
                    if record is None:
                        raise DataError("the record here is incomplete or not valid JSON",
                                        file=str(path), offset=offset)
                tried, buf = max(1, len(buf) - _ANCHOR_MAX), buf + chunk
    if fields is None:
        return record
    problem = check_optional(record, tuple(fields))
    if problem is not None:
        raise DataError(f"bad record ({problem[0]}): {problem[1]}", file=str(path), offset=offset)
    return {name: record.get(name) for name in fields}
