"""Sessions that arrive over HTTP → the records ``radar detect`` writes, in memory.

A :class:`~radar.data.memory.MemoryDay` holds one request's sessions with the interface
:class:`~radar.data.dataset.SessionCorpus` reads from a prepared day, so a micro-batch
of requests is one corpus of several "days", scored by the run's
:class:`~radar.runner.RunScorer`: the very code ``radar detect`` and ``radar run`` use,
for one detector or an ensemble alike. Nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from radar.data.memory import MemoryDay
from radar.runner import RunScorer


@dataclass
class ServingModel:
    """A run's scorer, loaded once, and what ``GET /v1/models`` says about it."""

    scorer: RunScorer
    device: torch.device
    info: dict = field(default_factory=dict)
    linker: Any = None               # source links of explained events (source.index)

    @property
    def name(self) -> str:
        return self.scorer.name

    @property
    def loaded(self) -> dict[str, Any]:
        return self.scorer.loaded

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    def score(self, groups: list[list]) -> list[list[dict[str, Any]]]:
        """Score several requests' sessions in one pass; one list of records per request."""
        days = [MemoryDay.from_sessions(sessions) for sessions in groups]
        corpus = self.scorer.corpus(days)
        outcome = self.scorer.score(corpus, device=self.device)
        names: list[str | None] = [None] * len(days)
        records = self.scorer.records(corpus, outcome, names,
                                      [day.session_ids for day in days],
                                      [day.session_keys for day in days])
        if self.linker is not None:
            from radar.source.annotate import annotate_explanations

            records = annotate_explanations(records, self.linker)
        out: list[list[dict[str, Any]]] = [[] for _ in days]
        table = corpus.sessions
        for i, record in enumerate(records):       # corpus order: day by day, row by row
            day, row = int(table.day[i]), int(table.row[i])
            record["session_id"] = days[day].given_ids[row]
            out[day].append(record)
        return out

    def warm_up(self) -> None:
        """One tiny scoring pass, so the first request does not pay for lazy set-up."""
        from radar.serve.schemas import SessionIn

        self.score([[SessionIn(event_sequence=[0])]])


def load_serving_model(run_dir: str | Path, device: torch.device,
                       threshold: float | None = None) -> ServingModel:
    """Load a run's detectors (its ensemble when it has several) onto ``device``;
    ``threshold`` overrides the run's calibrated one."""
    from radar.serve.describe import describe_model

    model = ServingModel(RunScorer.from_run(run_dir, device, threshold), device)
    model.linker = source_linker(model.scorer.config)
    model.info = describe_model(model, Path(run_dir))
    return model


def source_linker(config):
    """The run's source linker when its config names a source index (templates from
    ``source.templates`` or the training data's templates.tsv), else None. Requests
    carry no day files, so events link through their templates only."""
    if not config.source.index:
        return None
    from radar.source.annotate import TEMPLATES_NAME, load_linker

    templates = config.source.templates
    default = Path(config.data.preprocessed_dir) / TEMPLATES_NAME
    if templates is None and default.is_file():
        templates = default
    return load_linker(config.source.index, templates, line_format=config.source.line_format,
                       min_score=config.source.min_score)
