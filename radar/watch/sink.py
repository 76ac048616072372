"""Where scored sessions go: JSON lines to ``--alerts FILE`` (or stdout), and a webhook.

Every record carries the watcher's ``session_id``, a sequence number that only grows,
so a sink knows what it already holds. The file sink appends, flushes and fsyncs
each micro-batch; after a crash it reads its own tail back (dropping a torn last
line) and skips the records it already has. The webhook gets one POST per record
(``Idempotency-Key: WATCH_ID-SESSION_ID``) with retries and backoff on connection
errors, 429 and 5xx; what it acknowledged is appended to ``webhook.journal`` in the
state folder, so a restart does not post it again. (A crash between the receiver's
answer and that append can repeat one POST: the idempotency key lets a receiver
drop it.) Standard output cannot be read back, so a restart may repeat there the
records of the micro-batch it was writing; nor can a ``--alerts`` that is not a
regular file (``/dev/null``, ``/dev/stdout`` piped on, a FIFO), which is written the
same way: no tail read back, no fsync.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from radar.errors import RadarError

JOURNAL_NAME = "webhook.journal"
_TAIL_CHUNK = 1 << 16


def encode_record(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class FileSink:
    """JSON lines appended to a file (durable) or written to stdout."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = None
        self.through = -1           # highest session_id the file holds
        self.durable = False        # a regular file: fsynced, read back after a crash

    def open(self, from_id: int | None) -> None:
        """Open for appending; with ``from_id``, learn which records from it are there."""
        if self.path is None:
            self.handle = sys.stdout.buffer
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "ab")  # noqa: SIM115 (open for the whole watch)
        except OSError as exc:
            raise RadarError(f"cannot write --alerts {self.path} ({exc.strerror or exc}); "
                             "pass a writable file") from None
        self.durable = stat.S_ISREG(os.fstat(self.handle.fileno()).st_mode)
        if not self.durable:        # a device or pipe: a stream like stdout
            return
        with open(self.path, "r+b") as handle:
            _cut_torn_line(handle)
        if from_id is not None:
            self.through = _last_id_in_tail(self.path, from_id)

    def write(self, records: list[dict]) -> int:
        fresh = [record for record in records if record["session_id"] > self.through]
        if not fresh:
            return 0
        try:
            self.handle.write(b"".join(encode_record(record) for record in fresh))
            self.handle.flush()
            if self.durable:
                os.fsync(self.handle.fileno())
        except BrokenPipeError:
            raise RadarError(f"{self.name} was closed by the reader (broken pipe); keep the "
                             "reading end open, or write the alerts to a file") from None
        except OSError as exc:
            raise RadarError(f"cannot write to {self.name} ({exc.strerror or exc}); pass a "
                             "writable --alerts file with space left") from None
        self.through = fresh[-1]["session_id"]
        return len(fresh)

    @property
    def name(self) -> str:
        return "standard output" if self.path is None else f"--alerts {self.path}"

    def close(self) -> None:
        if self.handle is not None and self.path is not None:
            try:
                self.handle.close()
            except OSError:         # what did not reach a closed pipe was reported already
                pass
        self.handle = None


def _last_id_in_tail(path: Path, from_id: int) -> int:
    """The highest session_id at the end of ``path`` at or above ``from_id`` (-1 if none);
    a torn last line (a crash mid-write) is cut off first."""
    with open(path, "rb") as handle:
        found, end, carry = -1, handle.seek(0, 2), b""
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            handle.seek(start)
            lines = (handle.read(end - start) + carry).split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for line in reversed(lines):
                session_id = _session_id(line) if line.strip() else None
                if session_id is None:
                    continue
                if session_id < from_id:
                    return found
                found = max(found, session_id)
            end = start
    return found


def _cut_torn_line(handle) -> int:
    """Truncate after the last newline (nothing to do when the file ends with one)."""
    size = handle.seek(0, 2)
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        handle.seek(start)
        chunk = handle.read(end - start)
        at = chunk.rfind(b"\n")
        if at >= 0:
            cut = start + at + 1
            break
        end = start
    else:
        cut = 0
    if cut != size:
        handle.truncate(cut)
    return cut


def _session_id(line: bytes) -> int | None:
    try:
        value = json.loads(line).get("session_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


class Webhook:
    """POSTs each record to ``url`` (see the module docstring)."""

    def __init__(self, url: str, state_dir: Path, watch_id: str, *, retries: int = 3,
                 timeout_s: float = 5.0, backoff_s: float = 0.5):
        if not url.startswith(("http://", "https://")):
            raise RadarError(f"--webhook {url!r}: give an http:// or https:// URL")
        self.url, self.watch_id = url, watch_id
        self.retries, self.timeout_s, self.backoff_s = retries, timeout_s, backoff_s
        self.journal = Path(state_dir) / JOURNAL_NAME
        self.through = -1
        self.failures = 0
        self.delivered = 0

    def recover(self, saved_through: int) -> None:
        """What was acknowledged: the checkpoint's mark or the journal's, whichever is later."""
        self.through = saved_through
        if self.journal.is_file():
            for line in self.journal.read_text(encoding="utf-8").split():
                if line.lstrip("-").isdigit():
                    self.through = max(self.through, int(line))

    def reset_journal(self) -> None:
        """After a checkpoint recorded ``through``, the journal can start empty."""
        if self.journal.is_file():
            self.journal.write_bytes(b"")

    def post(self, records: list[dict]) -> list[str]:
        """Deliver the records not yet acknowledged; problems as one line each."""
        problems = []
        for record in records:
            if record["session_id"] <= self.through:
                continue
            problem = self._post_one(record)
            if problem:
                self.failures += 1
                problems.append(problem)
            else:
                self.delivered += 1
            self.through = record["session_id"]       # failed ones are not retried later
            with open(self.journal, "ab") as journal:
                journal.write(f"{self.through}\n".encode())
                journal.flush()
                os.fsync(journal.fileno())
        return problems

    def _post_one(self, record: dict) -> str | None:
        body = encode_record(record)
        headers = {"Content-Type": "application/json",
                   "Idempotency-Key": f"{self.watch_id}-{record['session_id']}"}
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), 30.0))
            request = urllib.request.Request(self.url, data=body, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read()
                return None
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break                       # the receiver refuses it: retrying won't help
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        return (f"webhook {self.url}: session {record['session_id']} not delivered after "
                f"{attempt + 1} attempts ({last})")
