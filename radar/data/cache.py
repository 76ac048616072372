"""The prepared cache: each day file converted once into numpy arrays, read by memmap.

``radar prepare`` turns ``preprocessed_logs_YYYY-MM-DD.json`` into
``<cache_dir>/preprocessed_logs_YYYY-MM-DD/`` holding:

- ``events.npy`` int32, every good session's event_sequence concatenated;
  ``offsets.npy`` int64 (n + 1), where each session starts in it;
- ``session_ids.npy`` int64, ``flags.npy`` uint8 (bit0 has_error, bit1 has_warn),
  ``service.npy`` uint16 (index into ``meta["services"]``), ``record_offsets.npy`` int64
  (byte offset of each record in the source, for :func:`radar.data.reader.read_record_at`;
  -1 where unknown);
- ``session_keys.json`` only when the data carries ``session_key``;
- ``tokens.npy`` int32 + ``token_offsets.npy`` int64 (unpadded) only when token_ids are
  not simply ``[101] + event_sequence + [102]`` (``meta["token_ids_layout"] == "custom"``);
- ``meta.json``: the source's signature (to notice changes), counts, services, length
  statistics, the bad-record report and whether the source was truncated.

This module knows the layout and reads it: :class:`PreparedDay` memory-maps a day,
:meth:`PreparedDay.gather` is the vectorised gather-and-pad training batches use, and
:func:`is_prepared_and_fresh` says whether a cached day still matches its source.
Building the cache (``prepare_file``, ``prepare_files``) is :mod:`radar.data.cache_build`;
those names are still importable from here.

A source is "unchanged" when its size, mtime, inode and ctime are those recorded and a
hash of its first and last 64 KiB matches. An edit in place that keeps the size and
restores the mtime still moves the ctime (only the kernel sets it), so it is re-prepared,
at the cost of two small reads per file, never a hash of the whole file. Moving or
copying the data folder also changes inode and ctime, and re-prepares once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from radar.data.records import LAYOUT_CUSTOM
from radar.errors import DataError

FORMAT_VERSION = 1
META_NAME = "meta.json"
ERROR_BIT, WARN_BIT = 1, 2
_FINGERPRINT_BYTES = 1 << 16

def cache_dir_for(day_file, cache_dir) -> Path:
    """The directory a day file prepares into: ``<cache_dir>/<file stem>``."""
    return Path(cache_dir) / Path(day_file).stem


def read_meta(day_dir: Path) -> dict | None:
    """The meta.json of a day directory, or None when missing or unreadable."""
    try:
        return json.loads((day_dir / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def source_signature(path: Path, stat: os.stat_result | None = None) -> dict:
    """What identifies a source file's content cheaply: size, mtime, inode, ctime and a
    hash of its first and last 64 KiB (see the module docstring)."""
    stat = stat or path.stat()
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if stat.st_size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, stat.st_size - _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino,
            "ctime_ns": stat.st_ctime_ns, "head_tail_hash": digest.hexdigest()}


def is_prepared_and_fresh(day_file, cache_dir, *, vocab_size: int | None = None) -> bool:
    """Whether the cache holds this day file, prepared from its current content (as far as
    :func:`source_signature` can tell) with the same vocab_size."""
    meta = read_meta(cache_dir_for(day_file, cache_dir))
    if (meta is None or meta.get("format_version") != FORMAT_VERSION
            or meta["options"].get("vocab_size") != vocab_size):
        return False
    recorded = meta["source"]
    try:
        stat = Path(day_file).stat()
        if any(recorded.get(key) != value for key, value in (
                ("size", stat.st_size), ("mtime_ns", stat.st_mtime_ns),
                ("inode", stat.st_ino), ("ctime_ns", stat.st_ctime_ns))):
            return False
        return recorded.get("head_tail_hash") == source_signature(Path(day_file),
                                                                  stat)["head_tail_hash"]
    except OSError:
        return False


# ---------------------------------------------------------------- reading a day

def _load_array(path: Path) -> np.ndarray:
    """Memory-map a .npy file (a plain load when empty: mmap cannot map 0 bytes)."""
    array_ = np.load(path, mmap_mode="r")
    return array_.view(np.ndarray) if array_.size else np.load(path)


def _gather_ragged(values: np.ndarray, begin: np.ndarray, take: np.ndarray,
                   pad: int) -> np.ndarray:
    """Rows ``values[begin[i] : begin[i] + take[i]]``, right-padded with ``pad``, as int64.

    Only the wanted elements are touched (no B x L index matrix), so a batch of short
    sessions with one long one costs little: one flat source and one flat destination
    index, each an arange plus a per-row shift.
    """
    rows, width = take.size, int(take.max()) if take.size else 0
    out = (np.zeros if pad == 0 else functools.partial(np.full, fill_value=pad))(
        (rows, width), dtype=np.int64)
    ends = np.cumsum(take)
    total = int(ends[-1]) if rows else 0
    if total:
        first = ends - take
        step = np.arange(total)
        source = step + np.repeat(begin - first, take)
        target = step + np.repeat(np.arange(0, rows * width, width) - first, take)
        out.reshape(-1)[target] = values[source]
    return out


class PreparedDay:
    """One prepared day, memory-mapped: sessions by row number ``0 .. n_sessions - 1``."""

    def __init__(self, directory):
        self.directory = Path(directory)
        meta = read_meta(self.directory)
        if meta is None:
            raise DataError(f"no prepared day at {self.directory} (meta.json missing or "
                            "unreadable); run `radar prepare` first")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{self.directory} was prepared by another RADAR version "
                            f"(format {meta.get('format_version')}, need {FORMAT_VERSION}); "
                            "run `radar prepare` again")
        self.meta = meta
        self.events = _load_array(self.directory / "events.npy")
        self.offsets = _load_array(self.directory / "offsets.npy")
        self.session_ids = _load_array(self.directory / "session_ids.npy")
        self.flags = _load_array(self.directory / "flags.npy")
        self.service = _load_array(self.directory / "service.npy")
        self.record_offsets = _load_array(self.directory / "record_offsets.npy")
        self.lengths = np.diff(self.offsets).astype(np.int64)
        self.n_sessions = int(self.session_ids.size)
        self.n_events = int(self.events.size)
        self.services: list[str] = list(meta["services"])
        self.token_ids_layout: str = meta["token_ids_layout"]

    def __repr__(self) -> str:
        return f"PreparedDay({str(self.directory)!r}, n_sessions={self.n_sessions})"

    @property
    def source(self) -> Path:
        """The day file this was prepared from (as it was named then)."""
        return Path(self.meta["source"]["path"])

    @property
    def has_error(self) -> np.ndarray:
        return (self.flags & ERROR_BIT) != 0

    @property
    def has_warn(self) -> np.ndarray:
        return (self.flags & WARN_BIT) != 0

    def service_names(self, rows) -> list[str]:
        return [self.services[i] for i in self.service[np.asarray(rows, dtype=np.int64)]]

    @functools.cached_property
    def session_keys(self) -> list[str | None] | None:
        """Each session's session_key (None when the data had none)."""
        if not self.meta.get("has_session_keys"):
            return None
        return json.loads((self.directory / "session_keys.json").read_text(encoding="utf-8"))

    def gather(self, rows, starts=None, max_len: int = 512,
               pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Events of ``rows`` as a padded int64 matrix ``[B, L]`` and their lengths ``[B]``.

        Row i starts at event ``starts[i]`` (a window start; default 0) and takes at most
        ``max_len`` events; L is the longest row of the batch after that clipping.
        """
        rows = np.asarray(rows, dtype=np.int64)
        length = self.lengths[rows]
        begin = self.offsets[rows]
        if starts is None:
            take = np.minimum(length, max_len)
        else:
            starts = np.clip(np.asarray(starts, dtype=np.int64), 0, length)
            begin = begin + starts
            take = np.minimum(length - starts, max_len)
        return _gather_ragged(self.events, begin, take, pad), take

    def tokens(self, rows, max_len: int | None = None,
               pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Unpadded token_ids of ``rows`` (a "custom" layout only), padded like :meth:`gather`."""
        if self.token_ids_layout != LAYOUT_CUSTOM:
            raise DataError(f"{self.directory}: token_ids layout is {self.token_ids_layout!r}, "
                            "so no tokens were stored; token_ids are [101] + events + [102] "
                            "(use gather) or absent")
        offsets = self._token_offsets
        rows = np.asarray(rows, dtype=np.int64)
        take = offsets[rows + 1] - offsets[rows]
        if max_len is not None:
            take = np.minimum(take, max_len)
        return _gather_ragged(self._tokens, offsets[rows], take, pad), take

    @functools.cached_property
    def _tokens(self) -> np.ndarray:
        return _load_array(self.directory / "tokens.npy")

    @functools.cached_property
    def _token_offsets(self) -> np.ndarray:
        return _load_array(self.directory / "token_offsets.npy")


def open_prepared(day_cache_dir) -> PreparedDay:
    """Open a prepared day directory (see :func:`cache_dir_for`)."""
    return PreparedDay(day_cache_dir)
