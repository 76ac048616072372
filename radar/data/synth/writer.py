"""Writing a generated set: :func:`generate` and its day files, labels and templates.

Also :func:`read_ground_truth`, which reads the labels back.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from radar.data.files import DayFileWriter, day_file_name
from radar.data.labels import LABELS_NAME, write_labels
from radar.data.synth.render import render_lines, session_record
from radar.data.synth.services import SystemModel
from radar.data.synth.templates import RELEASE_KEY, TEMPLATES
from radar.data.synth.traffic import Session, add_release, draw_sessions
from radar.errors import RadarError
from radar.fsutil import atomic_write, atomic_write_text


@dataclass
class SynthSummary:
    """What :func:`generate` wrote, with the ground-truth counts."""
    out_dir: Path
    files: list[Path]
    labels_path: Path
    templates_path: Path
    n_sessions: int = 0
    n_anomalies: int = 0
    n_has_error: int = 0
    n_has_warn: int = 0
    n_over_max_len: int = 0           # sessions whose token_ids were cut to max_len
    max_events: int = 0
    kinds: Counter = field(default_factory=Counter)
    services: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "files": [str(f) for f in self.files],
                "labels_path": str(self.labels_path), "templates_path": str(self.templates_path),
                "n_sessions": self.n_sessions, "n_anomalies": self.n_anomalies,
                "n_has_error": self.n_has_error, "n_has_warn": self.n_has_warn,
                "n_over_max_len": self.n_over_max_len, "max_events": self.max_events,
                "kinds": dict(self.kinds), "services": dict(self.services)}


def _write_day(path: Path, sessions: list[Session], rng: random.Random, day: dt.date,
               max_len: int, padded: bool, summary: SynthSummary, labels: list) -> None:
    width = max_len if padded else min(max_len, max(len(s.keys) for s in sessions) + 2)
    with atomic_write(path, "wb") as handle:
        # Byte-identical to json.dump(list_of_sessions, f, ensure_ascii=False), one
        # session at a time so memory stays flat.
        writer = DayFileWriter(handle, style="json_dump")
        for sid, session in enumerate(sessions):
            lines, has_error, has_warn = render_lines(rng, day.isoformat(), session.start_ms,
                                                      session.service, session.keys)
            events = [TEMPLATES[key].id for key in session.keys]
            record = session_record(sid, events, width, max_len, has_error, has_warn,
                                    session.service, lines)
            writer.write(record)
            labels.append((path.name, sid, int(bool(session.kind)), session.kind))
            summary.n_sessions += 1
            summary.n_anomalies += bool(session.kind)
            summary.n_has_error += has_error
            summary.n_has_warn += has_warn
            summary.n_over_max_len += len(events) + 2 > max_len
            summary.max_events = max(summary.max_events, len(events))
            summary.kinds[session.kind or "normal"] += 1
            summary.services[session.service] += 1
        writer.close()


def generate(out_dir: str | Path, *, days: int = 3, sessions: int = 2000,
             anomaly_rate: float = 0.05, seed: int = 0, start_date: str = "2025-02-24",
             max_len: int = 512, padded: bool = True, drift: float = 0.0,
             release: float = 0.0) -> SynthSummary:
    """Write ``days`` day files of ``sessions`` sessions each, plus labels and templates.

    The same arguments give byte-identical files. ``padded`` pads every ``token_ids`` to
    ``max_len``; otherwise each file pads to its own longest session (capped at
    ``max_len``). ``event_sequence`` is never cut; ``token_ids`` keep the first
    ``max_len - 2`` events between CLS (101) and SEP (102). ``drift`` > 0 moves the
    system a step every day after the first (:meth:`SystemModel.drifted`, a random walk
    from its own seed); 0 leaves every day the same system. ``release`` > 0 ships a new
    benign log line on the last day at midday: that share of the day's sessions log it
    (their labels unchanged); the other days are the same bytes as without it.
    """
    if days < 1 or sessions < 1:
        raise RadarError(f"days and sessions must be at least 1 (got {days}, {sessions})")
    if not 0.0 <= anomaly_rate <= 1.0:
        raise RadarError(f"anomaly rate must lie in [0, 1], got {anomaly_rate}")
    if drift < 0:
        raise RadarError(f"drift must be 0 or more, got {drift}")
    if not 0.0 <= release <= 0.5:
        raise RadarError(f"release must lie in [0, 0.5] (a share of the last day's "
                         f"sessions, all after midday), got {release}")
    if max_len < 3:
        raise RadarError(f"max_len must be at least 3 (CLS, one event, SEP), got {max_len}")
    try:
        first = dt.date.fromisoformat(start_date)
    except ValueError:
        raise RadarError(f"start date {start_date!r} is not YYYY-MM-DD") from None
    out = Path(out_dir)
    model = SystemModel.build(random.Random(f"radar-synth-model:{seed}"))
    summary = SynthSummary(out, [], out / LABELS_NAME, out / "templates.tsv")
    labels: list[tuple] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        if drift > 0 and offset:
            model = model.drifted(random.Random(f"radar-synth-drift:{seed}:{day}"), drift)
        rng = random.Random(f"radar-synth:{seed}:{day.isoformat()}")
        day_sessions = draw_sessions(model, rng, sessions, anomaly_rate)
        if release > 0 and offset == days - 1:
            add_release(day_sessions, random.Random(f"radar-synth-release:{seed}"), release)
        path = out / day_file_name(day)
        _write_day(path, day_sessions, rng, day, max_len, padded, summary, labels)
        summary.files.append(path)
    write_labels(summary.labels_path, labels, extra_columns=("anomaly_kind",))
    _write_templates(summary.templates_path, release > 0)
    return summary


def _write_templates(path: Path, release: bool = False) -> None:
    # Anomaly-only templates are listed as "shared": a log parser cannot know them apart.
    rows = ["event_id\tservice\tlevel\ttemplate"] + [
        f"{t.id}\t{'shared' if t.service == 'anomaly' else t.service}\t{t.level}\t{t.pattern}"
        for t in sorted(TEMPLATES.values(), key=lambda t: t.id)
        if release or t.key != RELEASE_KEY]
    atomic_write_text(path, "\n".join(rows) + "\n")


def read_ground_truth(path: str | Path) -> dict[tuple[str, int], tuple[int, str]]:
    """``labels.csv`` as ``{(file name, session_id): (label, anomaly_kind)}``."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {(row["file"], int(row["session_id"])): (int(row["label"]), row["anomaly_kind"])
                for row in csv.DictReader(handle)}
