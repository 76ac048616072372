"""Per-record validation of session objects, and the report a read produces.

A session object (one element of a day file) needs ``session_id``, ``event_sequence``,
``has_error``, ``has_warn`` and ``service_name``; ``token_ids``, ``attention_mask``,
``session_key`` and ``original_logs`` are optional. :func:`check_record` is the single
authority on what makes a record bad; the reader's fast path (typed msgspec decoding)
only accepts what it accepts and falls back to it to name the problem.

:class:`TokenLayoutChecker` recognises the usual ``[CLS] + events + [SEP]`` token_ids
on their raw JSON text. No numpy, no torch here, so validation can run anywhere.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from typing import Any

import msgspec

from radar.errors import DataError

REQUIRED_FIELDS = ("session_id", "event_sequence", "has_error", "has_warn", "service_name")
OPTIONAL_FIELDS = ("token_ids", "attention_mask", "session_key", "original_logs")
ALL_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

# Kinds of bad record.
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
EMPTY_SEQUENCE = "empty_sequence"
TOKEN_OUT_OF_VOCAB = "token_out_of_vocab"
MASK_LENGTH_MISMATCH = "mask_length_mismatch"
INVALID_UTF8 = "invalid_utf8"
TOO_DEEP = "too_deep"               # a value nested deeper than the decoder can follow
BAD_KINDS = (MISSING_FIELD, WRONG_TYPE, EMPTY_SEQUENCE, TOKEN_OUT_OF_VOCAB,
             MASK_LENGTH_MISMATCH, INVALID_UTF8, TOO_DEEP)
TOO_DEEP_DETAIL = ("a value is nested too deeply to decode (hundreds of levels of arrays or "
                   "objects); no session field nests more than two levels")

# Notices: things worth counting that do not make a record bad.
LONG_SEQUENCE = "long_sequence"                  # split into windows later
ORIGINAL_LOGS_INVALID_UTF8 = "original_logs_invalid_utf8"  # replaced with U+FFFD

# The prepared cache stores event ids as int32 and session ids as int64.
MAX_EVENT_ID = 2**31 - 1
SESSION_ID_RANGE = (-2**63, 2**63 - 1)
MAX_EXAMPLES = 20

# BERT-style specials used by the user's token_ids, and how a day's token_ids relate to
# its events: [CLS] + events + [SEP] (padded), absent, or something else ("custom").
PAD_TOKEN, CLS_TOKEN, SEP_TOKEN = 0, 101, 102
LAYOUT_CLS_EVENTS_SEP, LAYOUT_ABSENT, LAYOUT_CUSTOM = "cls_events_sep", "absent", "custom"
_WHITESPACE = b" \t\r\n"


def session_record(session_id: int, events: list[int], *, service: str, has_error: bool = False,
                   has_warn: bool = False, original_logs: list[str] | None = None,
                   session_key: str | None = None) -> dict[str, Any]:
    """One session in the day-file format, ``token_ids`` = [CLS] + events + [SEP] unpadded
    (what converters and ``radar ingest`` write; RADAR pads when it batches)."""
    record: dict[str, Any] = {
        "session_id": session_id, "event_sequence": events,
        "token_ids": [CLS_TOKEN, *events, SEP_TOKEN], "attention_mask": [1] * (len(events) + 2),
        "has_error": has_error, "has_warn": has_warn, "service_name": service}
    if original_logs is not None:
        record["original_logs"] = original_logs
    if session_key is not None:
        record["session_key"] = session_key
    return record


@dataclasses.dataclass(frozen=True)
class RecordLimits:
    """What a record is checked against: sequence limit, optional vocab size, fields read.

    Optional fields are only checked when they are in ``fields`` (they are only decoded
    then); required fields are always checked.
    """

    max_seq_length: int = 512
    vocab_size: int | None = None
    fields: tuple[str, ...] = ALL_FIELDS


@dataclasses.dataclass
class BadRecord:
    """One bad record: where it is and what is wrong with it."""

    file: str
    index: int
    offset: int | None
    kind: str
    detail: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
             int: "integer", float: "number"}
    return names.get(type(value), type(value).__name__)


def _check_int_list(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{name} must be an array of integers, got {_type_name(value)}"
    for position, item in enumerate(value):
        if not _is_int(item):
            return f"{name}[{position}] must be an integer, got {_type_name(item)}"
    return None


def _check_event_sequence(value: Any) -> tuple[str, str] | None:
    problem = _check_int_list("event_sequence", value)
    if problem:
        return WRONG_TYPE, problem
    if not value:
        return EMPTY_SEQUENCE, "event_sequence is empty"
    for position, event in enumerate(value):
        if not 0 <= event <= MAX_EVENT_ID:
            return WRONG_TYPE, (f"event_sequence[{position}] = {event} is outside "
                                f"[0, {MAX_EVENT_ID}]")
    return None


def check_optional(obj: dict, fields: tuple[str, ...]) -> tuple[str, str] | None:
    """``(kind, detail)`` when an optional field among ``fields`` has the wrong type."""
    for name in ("token_ids", "attention_mask"):
        value = obj.get(name)
        if name in fields and value is not None:
            problem = _check_int_list(name, value)
            if problem:
                return WRONG_TYPE, problem
    key = obj.get("session_key")
    if "session_key" in fields and key is not None and not isinstance(key, str):
        return WRONG_TYPE, f"session_key must be a string, got {_type_name(key)}"
    logs = obj.get("original_logs")
    if "original_logs" in fields and logs is not None and not (
            isinstance(logs, list) and all(isinstance(line, str) for line in logs)):
        return WRONG_TYPE, "original_logs must be an array of strings"
    return None


def check_record(obj: Any, limits: RecordLimits) -> tuple[str, str] | None:
    """Return ``(kind, detail)`` for a bad record, or None when the record is good."""
    if not isinstance(obj, dict):
        return WRONG_TYPE, f"record is a JSON {_type_name(obj)}, not an object"
    for name in REQUIRED_FIELDS:
        if name not in obj:
            return MISSING_FIELD, f"required field {name!r} is missing"
    session_id = obj["session_id"]
    if not _is_int(session_id):
        return WRONG_TYPE, f"session_id must be an integer, got {_type_name(session_id)}"
    if not SESSION_ID_RANGE[0] <= session_id <= SESSION_ID_RANGE[1]:
        return WRONG_TYPE, f"session_id {session_id} does not fit in 64 bits"
    problem = _check_event_sequence(obj["event_sequence"])
    if problem:
        return problem
    for name in ("has_error", "has_warn"):
        if not isinstance(obj[name], bool):
            return WRONG_TYPE, f"{name} must be true or false, got {_type_name(obj[name])}"
    if not isinstance(obj["service_name"], str):
        return WRONG_TYPE, f"service_name must be a string, got {_type_name(obj['service_name'])}"
    problem = check_optional(obj, limits.fields)
    if problem:
        return problem
    return check_tokens(obj, limits)


def check_tokens(obj: dict, limits: RecordLimits) -> tuple[str, str] | None:
    """The checks typed decoding cannot express: mask length and (with a limit) vocab range."""
    tokens = obj.get("token_ids") if "token_ids" in limits.fields else None
    mask = obj.get("attention_mask") if "attention_mask" in limits.fields else None
    if tokens is not None and mask is not None and len(tokens) != len(mask):
        return MASK_LENGTH_MISMATCH, (f"token_ids has {len(tokens)} entries but "
                                      f"attention_mask has {len(mask)}")
    if tokens and limits.vocab_size is not None:
        low, high = min(tokens), max(tokens)
        if low < 0 or high >= limits.vocab_size:
            bad = low if low < 0 else high
            return TOKEN_OUT_OF_VOCAB, (f"token id {bad} is outside [0, {limits.vocab_size}) "
                                        "(vocab_size)")
    return None


def check_token_lists(tokens: Any, mask: Any, vocab_size: int | None) -> tuple[str, str] | None:
    """Full checks of untyped ``token_ids`` / ``attention_mask`` values (None = absent)."""
    for name, value in (("token_ids", tokens), ("attention_mask", mask)):
        problem = None if value is None else _check_int_list(name, value)
        if problem:
            return WRONG_TYPE, problem
    limits = RecordLimits(vocab_size=vocab_size, fields=("token_ids", "attention_mask"))
    return check_tokens({"token_ids": tokens, "attention_mask": mask}, limits)


def active_tokens(tokens: list[int], mask: list[int] | None) -> list[int]:
    """The unpadded tokens: where attention_mask is 1, or the prefix before the first 0."""
    if mask is None:
        try:
            return tokens[:tokens.index(PAD_TOKEN)]
        except ValueError:
            return tokens
    n_active = mask.count(1)
    if mask[:n_active].count(1) == n_active:        # the usual case: ones, then padding
        return tokens[:n_active]
    return [token for token, keep in zip(tokens, mask) if keep == 1]


def matches_cls_events_sep(active: list[int], events: list[int], padded_length: int) -> bool:
    """Whether ``active`` is ``[CLS] + events + [SEP]``, or its cut to a full (unpadded) row."""
    if len(active) == len(events) + 2:
        return active[0] == CLS_TOKEN and active[-1] == SEP_TOKEN and active[1:-1] == events
    if len(active) < len(events) + 2 and len(active) == padded_length and active:
        if active[0] != CLS_TOKEN:
            return False
        # Either SEP kept after the cut events (BERT truncation) or a plain cut.
        kept_sep = active[-1] == SEP_TOKEN and active[1:-1] == events[:len(active) - 2]
        return kept_sep or active[1:] == events[:len(active) - 1]
    return False


@dataclasses.dataclass
class ReadReport:
    """What reading one file (or, merged, several) found: good and bad records, notices."""

    file: str | None = None
    n_records: int = 0
    n_bad: int = 0
    bad_counts: Counter = dataclasses.field(default_factory=Counter)
    examples: list[BadRecord] = dataclasses.field(default_factory=list)
    notices: Counter = dataclasses.field(default_factory=Counter)
    truncated: DataError | None = None
    bytes_read: int = 0

    def add_bad(self, bad: BadRecord) -> None:
        self.n_bad += 1
        self.bad_counts[bad.kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(bad)

    def merge(self, other: ReadReport) -> ReadReport:
        """A new report adding ``other`` to this one (the file becomes None when they differ)."""
        merged = ReadReport(
            file=self.file if self.file == other.file else None,
            n_records=self.n_records + other.n_records, n_bad=self.n_bad + other.n_bad,
            bad_counts=self.bad_counts + other.bad_counts,
            examples=(self.examples + other.examples)[:MAX_EXAMPLES],
            notices=self.notices + other.notices,
            truncated=self.truncated or other.truncated,
            bytes_read=self.bytes_read + other.bytes_read)
        return merged

    def to_dict(self) -> dict:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        truncated = None
        if self.truncated is not None:
            truncated = {"message": str(self.truncated), "file": self.truncated.file,
                         "offset": self.truncated.offset, "index": self.truncated.index}
        return {"file": self.file, "n_records": self.n_records, "n_bad": self.n_bad,
                "bad_counts": dict(self.bad_counts), "notices": dict(self.notices),
                "examples": [bad.to_dict() for bad in self.examples],
                "truncated": truncated, "bytes_read": self.bytes_read}

    @classmethod
    def from_dict(cls, data: dict) -> ReadReport:
        truncated = data.get("truncated")
        return cls(file=data.get("file"), n_records=data["n_records"], n_bad=data["n_bad"],
                   bad_counts=Counter(data.get("bad_counts", {})),
                   examples=[BadRecord(**bad) for bad in data.get("examples", [])],
                   notices=Counter(data.get("notices", {})),
                   truncated=rebuild_data_error(truncated) if truncated else None,
                   bytes_read=data.get("bytes_read", 0))


def rebuild_data_error(info: dict) -> DataError:
    """A DataError with the given full message and location attributes.

    DataError prefixes its message with the location; the stored message already has
    that prefix, so it is passed without location and the attributes are set after.
    Also used to carry errors across process boundaries, where pickling loses them.
    """
    error = DataError(info["message"])
    error.file, error.offset, error.index = info.get("file"), info.get("offset"), info.get("index")
    return error


# ---------------------------------------------------------------- token_ids layout

@functools.lru_cache(maxsize=4096)
def _mask_bytes(n_active: int, length: int) -> bytes:
    """``attention_mask`` as compact JSON: ``n_active`` ones, then zeros up to ``length``."""
    return b"[" + (b"1," * n_active + b"0," * (length - n_active))[:-1] + b"]"


@functools.lru_cache(maxsize=1024)
def _padding_bytes(n_pad: int) -> bytes:
    return b",0" * n_pad + b"]"


_active_decoder = msgspec.json.Decoder(list[list[int]])


class TokenLayoutChecker:
    """A reader batch_check (prepare uses it): validates token_ids, tallies the layout.

    token_ids/attention_mask arrive as raw JSON text. The usual record, exactly
    ``[CLS] + events + [SEP]`` then padding, is recognised on that text: the mask and
    the padding are compared as bytes and only the active tokens of the whole batch
    are decoded, in one call. Anything else is decoded and checked in full.
    """

    def __init__(self, vocab_size: int | None):
        self.vocab_size = vocab_size
        self.layouts: Counter = Counter()
        self.max_padded_length = 0

    def __call__(self, records: list[dict]) -> dict:
        problems: dict = {}
        candidates, heads, padded = [], [], []
        for position, record in enumerate(records):
            tokens, mask = record.get("token_ids"), record.get("attention_mask")
            if tokens.__class__ is msgspec.Raw and mask.__class__ is msgspec.Raw:
                head, length = _split_padding(record["event_sequence"], bytes(tokens),
                                              bytes(mask))
                if head:
                    candidates.append(position)
                    heads.append(head)
                    padded.append(length)
                    continue
            self._check_one(position, record, problems)
        if candidates:
            self._match_heads(records, candidates, heads, padded, problems)
        return problems

    def _match_heads(self, records, candidates, heads, padded, problems) -> None:
        try:
            actives = _active_decoder.decode(b"[" + b"],".join(heads) + b"]]")
        except msgspec.DecodeError:
            actives = [None] * len(candidates)
        n_matched = 0
        for position, active in zip(candidates, actives):
            events = records[position]["event_sequence"]
            if (active is not None and len(active) == len(events) + 2
                    and active[0] == CLS_TOKEN and active[-1] == SEP_TOKEN
                    and active[1:-1] == events):
                n_matched += 1
                problem = self._vocab_problem(events)
                if problem is not None:
                    problems[position] = problem
            else:
                self._check_one(position, records[position], problems)
        self.layouts[LAYOUT_CLS_EVENTS_SEP] += n_matched
        self.max_padded_length = max(self.max_padded_length, max(padded))

    def _check_one(self, position: int, record: dict, problems: dict) -> None:
        """The full check of one record's token lists (decoded here if still raw)."""
        tokens, mask = record.get("token_ids"), record.get("attention_mask")
        try:
            tokens = msgspec.json.decode(tokens) if isinstance(tokens, msgspec.Raw) else tokens
            mask = msgspec.json.decode(mask) if isinstance(mask, msgspec.Raw) else mask
        except RecursionError:
            problems[position] = TOO_DEEP, TOO_DEEP_DETAIL
            return
        except msgspec.DecodeError as error:       # raw text: e.g. a number out of range
            problems[position] = WRONG_TYPE, f"token_ids or attention_mask: {error}"
            return
        if tokens is None:
            self.layouts[LAYOUT_ABSENT] += 1
            return
        problem = check_token_lists(tokens, mask, self.vocab_size)
        if problem is not None:
            problems[position] = problem
            return
        events = record["event_sequence"]
        matched = matches_cls_events_sep(active_tokens(tokens, mask), events, len(tokens))
        self.layouts[LAYOUT_CLS_EVENTS_SEP if matched else LAYOUT_CUSTOM] += 1
        self.max_padded_length = max(self.max_padded_length, len(tokens))

    def _vocab_problem(self, events: list[int]):
        if self.vocab_size is None:
            return None
        highest = max(max(events), SEP_TOKEN)
        if highest >= self.vocab_size:
            return TOKEN_OUT_OF_VOCAB, (f"token id {highest} is outside [0, {self.vocab_size}) "
                                        "(vocab_size)")
        return None

    @property
    def layout(self) -> str:
        if self.layouts[LAYOUT_CUSTOM]:
            return LAYOUT_CUSTOM
        return LAYOUT_CLS_EVENTS_SEP if self.layouts[LAYOUT_CLS_EVENTS_SEP] else LAYOUT_ABSENT


def _split_padding(events: list[int], tokens: bytes, mask: bytes) -> tuple[bytes, int]:
    """For raw token_ids/attention_mask that look like CLS + events + SEP then padding:
    (token_ids text without padding and closing bracket, padded length); else (b"", 0).

    Compares on whitespace-free JSON text, so the padding never becomes Python objects.
    """
    tokens, mask = tokens.translate(None, _WHITESPACE), mask.translate(None, _WHITESPACE)
    n_active, length = len(events) + 2, (len(mask) - 1) // 2
    if length < n_active or mask != _mask_bytes(n_active, length):
        return b"", 0
    padding = _padding_bytes(length - n_active)
    if not tokens.endswith(padding):
        return b"", 0
    return tokens[:len(tokens) - len(padding)], length
