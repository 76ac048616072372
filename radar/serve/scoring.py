"""Sessions that arrive over HTTP → the records ``radar detect`` writes, in memory.

A micro-batch of requests is scored in one pass by the run's
:meth:`~radar.scoring.run.RunScorer.score_groups` (the in-memory scoring ``radar watch``
and the public API use too: the very code ``radar detect`` and ``radar run`` use, for one
detector or an ensemble alike), then linked to source code when the run has an index.
Nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from radar.scoring.run import RunScorer
from radar.source.annotate import annotate_explanations, run_linker


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
        out = self.scorer.score_groups(groups, device=self.device)
        if self.linker is not None:
            out = [annotate_explanations(records, self.linker) for records in out]
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
    model.linker = run_linker(model.scorer.config)
    model.info = describe_model(model, Path(run_dir))
    return model
