"""Sessions that arrive over HTTP → the records ``radar detect`` writes, in memory.

A :class:`~radar.data.memory.MemoryDay` holds one request's sessions with the interface
:class:`~radar.data.dataset.SessionCorpus` reads from a prepared day (``n_sessions``,
``services``, ``service``, ``flags``, ``lengths``, ``session_ids``, ``session_keys``
and the very same ``gather``), so a micro-batch of requests is one corpus of several
"days" and is scored by the code ``radar detect`` runs: :func:`radar.detect.score_corpus`
and :func:`~radar.detect.iter_result_records` for one detector, the saved ensemble's
:func:`~radar.ensemble.score_with_ensemble` and :func:`~radar.ensemble.ensemble_records`
for several. Nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from radar.data.dataset import SessionCorpus
from radar.data.memory import MemoryDay
from radar.errors import RadarError

RUN_FIX = ("point --run at the output_dir of a finished `radar run` (or `radar train`): "
           "a multi-detector run holds ensemble.json, a single-detector run best_model.pt")


def resolve_run(run_dir: str | Path) -> tuple[str, Path]:
    """("ensemble", ensemble.json) or ("single", best checkpoint) for a run folder."""
    from radar.ensemble import ENSEMBLE_FILE
    from radar.pipeline import best_checkpoint

    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise RadarError(f"--run {run_dir}: a file; give the run folder it is in "
                         f"(--run {run_dir.parent})")
    if not run_dir.is_dir():
        raise RadarError(f"--run {run_dir}: no such folder; {RUN_FIX}")
    if (run_dir / ENSEMBLE_FILE).is_file():
        return "ensemble", run_dir / ENSEMBLE_FILE
    try:
        return "single", best_checkpoint(run_dir)
    except RadarError:
        raise RadarError(f"--run {run_dir}: no trained model there (neither ensemble.json nor "
                         f"best_model.pt / last.pt); {RUN_FIX}") from None


@dataclass
class ServingModel:
    """The trained detectors of one run, loaded once, and how to score with them."""

    kind: str                        # "single" or "ensemble"
    name: str                        # what the results say scored them
    device: torch.device
    batch_size: int
    window: int
    vocab: Any
    threshold: float
    loaded: dict[str, Any]           # detector name -> LoadedDetector
    state: dict | None = None        # ensemble.json (ensemble runs)
    config: Any = None               # the config the ensemble scores with
    info: dict = field(default_factory=dict)

    def score(self, groups: list[list]) -> list[list[dict[str, Any]]]:
        """Score several requests' sessions in one pass; one list of records per request."""
        days = [MemoryDay.from_sessions(sessions) for sessions in groups]
        corpus = SessionCorpus(days, self.vocab, self.window)
        names: list[str | None] = [None] * len(days)
        ids = [day.session_ids for day in days]
        keys = [day.session_keys for day in days]
        if self.kind == "ensemble":
            from radar.ensemble import ensemble_records, score_with_ensemble

            outcome = score_with_ensemble(self.state, self.config, self.loaded, corpus,
                                          batch_size=self.batch_size, device=self.device)
            records = ensemble_records(corpus, outcome, names, ids, keys)
        else:
            from radar.detect import iter_result_records, score_corpus

            loaded = next(iter(self.loaded.values()))
            results = score_corpus(loaded, corpus, batch_size=self.batch_size,
                                   device=self.device)
            records = iter_result_records(corpus, results, self.threshold, names, ids, keys)
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


def load_serving_model(run_dir: str | Path, device: torch.device) -> ServingModel:
    """Load a run's detectors (an ensemble when it has ensemble.json) onto ``device``."""
    from radar.pipeline import threshold_of, window_length

    kind, path = resolve_run(run_dir)
    if kind == "ensemble":
        from radar.ensemble import load_ensemble

        state, config, loaded = load_ensemble(path, device)
        for name, item in loaded.items():
            if item.calibration is None:
                raise RadarError(f"{item.checkpoint} ({name}) holds no calibrated threshold; "
                                 "finish training that run (radar run) before serving it")
        first = next(iter(loaded.values()))
        model = ServingModel(kind, state["calibration"]["score_name"], device,
                             config.detection.batch_size, window_length(config), first.vocab,
                             float(state["calibration"]["threshold"]), loaded, state, config)
    else:
        from radar.detect import load_trained

        item = load_trained(path, device)
        model = ServingModel(kind, item.detector.name, device,
                             item.config.detection.batch_size, window_length(item.config),
                             item.vocab, threshold_of(item), {item.detector.name: item},
                             config=item.config)
    from radar.serve.describe import describe_model

    model.info = describe_model(model, Path(run_dir))
    return model
