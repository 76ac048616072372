"""Score with several trained detectors, combine, grade severity, write the results.

Every detector scores the same sessions (they share the run's vocabulary and
corpus order). Each one's raw scores on the *normal held-out* sessions of the
training days fit a normaliser (:mod:`radar.scoring.normalize`); the combiner
(``ensemble.method``) reduces the normalised columns to one score, and the
ensemble threshold is set on the combined held-out scores with the run's
``detection.threshold_method`` — the same data, and never the days reported on.
The normaliser and the threshold are fitted on the same held-out sessions; the
ecdf share is the in-sample rank there, a mild optimism at the extreme tail.

Outputs in the run folder: each detector's ``NAME/anomaly_results.json``, the
ensemble's ``anomaly_results.json`` (``anomaly_score`` is the combined score,
plus per-detector raw and normalised scores, votes, severity and reasons),
``ensemble.json`` (everything needed to score new data the same way) and
``calibration.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radar.config import RadarConfig
from radar.data.dataset import SessionCorpus
from radar.detect import (
    SessionResults,
    iter_result_records,
    load_trained,
    score_corpus,
)
from radar.errors import ConfigError, RadarError
from radar.fsutil import atomic_write_text
from radar.scoring.calibration import Calibration, set_threshold
from radar.scoring.severity import LEVELS, SeverityResult

Log = Callable[[str], None]
ENSEMBLE_FILE = "ensemble.json"


def make_scorer(name: str, config: RadarConfig, kind: str):
    from radar.plugins import get_scorer_class

    cls = get_scorer_class(name)
    if getattr(cls, "kind", "combiner") != kind:
        key = "ensemble.method" if kind == "combiner" else "severity.scorer"
        raise ConfigError(f"{key}: scorer {name!r} is a {cls.kind} scorer, not a {kind}; "
                          "`radar plugins` lists the scorers")
    section = config.ensemble if kind == "combiner" else config.severity
    return cls(asdict(section))


@dataclass
class DetectorScores:
    name: str
    checkpoint: Path
    threshold: float
    normal: np.ndarray           # raw scores of the held-out normal sessions
    results: SessionResults      # raw scores of the sessions reported on


@dataclass
class EnsembleOutcome:
    combined: np.ndarray
    normalized: np.ndarray       # (n, d)
    calibration: Calibration
    severity: SeverityResult
    members: list[DetectorScores]


def score_members(checkpoints: dict[str, Path], calibration_corpus: SessionCorpus,
                  corpus: SessionCorpus, *, batch_size: int, device, log: Log
                  ) -> list[DetectorScores]:
    members = []
    for name, checkpoint in checkpoints.items():
        loaded = load_trained(checkpoint, device)
        if loaded.calibration is None:
            raise RadarError(f"{checkpoint} holds no calibrated threshold; train {name} to the "
                             "end (radar train) before using it in an ensemble")
        normal = score_corpus(loaded, calibration_corpus, batch_size=batch_size, device=device)
        results = score_corpus(loaded, corpus, batch_size=batch_size, device=device)
        log(f"{name}: scored {corpus.n_sessions} sessions")
        members.append(DetectorScores(name, Path(checkpoint), loaded.calibration.threshold,
                                      normal.score, results))
    return members


def combine_members(config: RadarConfig, members: list[DetectorScores], corpus: SessionCorpus,
                    fitted: dict | None = None) -> tuple[EnsembleOutcome, Any]:
    """Fit the combiner on the members' normal scores (or load ``fitted``, the state of
    an ``ensemble.json``), combine, threshold and grade severity."""
    names = [m.name for m in members]
    scorer = make_scorer(config.ensemble.method, config, "combiner")
    if fitted is None:
        normal = np.stack([m.normal for m in members], axis=1)
        scorer.fit(normal, names, [m.threshold for m in members], config.ensemble.normalize)
    else:
        scorer.load_state_dict(fitted["scorer"])
        if scorer.detectors_ != names:
            raise RadarError(f"ensemble state lists detectors {scorer.detectors_}, the "
                             f"checkpoints give {names}")
    raw = np.stack([m.results.score for m in members], axis=1)
    normalized = scorer.normalized(raw)     # once: the records carry it too
    combined = scorer.reduce(normalized, raw)
    score_name = f"ensemble:{config.ensemble.method}({', '.join(names)})"
    if fitted is not None:
        calibration = Calibration.from_dict(fitted["calibration"])
    elif scorer.fixed_threshold is not None:
        calibration = Calibration("fixed", float(scorer.fixed_threshold), None, 0,
                                  f"the {scorer.name} combiner's own cut", score_name)
    else:
        calibration = set_threshold(config.detection, normal_scores=scorer.combine(normal),
                                    score_name=score_name)
    severity_scorer = make_scorer(config.severity.scorer, config, "severity")
    table = corpus.sessions
    severity = severity_scorer.assess(
        combined, calibration.threshold, corpus.services, np.asarray(table.service),
        (np.asarray(table.flags) & 1).astype(bool), (np.asarray(table.flags) & 2).astype(bool))
    outcome = EnsembleOutcome(combined, normalized, calibration, severity, members)
    return outcome, scorer


def load_ensemble(path: str | Path, device) -> tuple[dict, RadarConfig, dict]:
    """Read ``ensemble.json``: its state, a config holding its ensemble and severity
    sections, and the loaded detectors by name."""
    from radar.config import EnsembleConfig, SeverityConfig, build_section

    path = Path(path)
    if path.is_dir():
        path = path / ENSEMBLE_FILE
    if not path.is_file():
        raise RadarError(f"{path} does not exist; `radar run` with several detectors writes "
                         "ensemble.json into its output_dir")
    state = json.loads(path.read_text(encoding="utf-8"))
    loaded = {name: load_trained(checkpoint, device)
              for name, checkpoint in state["checkpoints"].items()}
    config = next(iter(loaded.values())).config
    config.ensemble = build_section(EnsembleConfig, state["ensemble"], "ensemble")
    config.severity = build_section(SeverityConfig, state["severity"], "severity")
    return state, config, loaded


def score_with_ensemble(state: dict, config: RadarConfig, loaded: dict, corpus: SessionCorpus,
                        *, batch_size: int, device, threshold: float | None = None
                        ) -> EnsembleOutcome:
    """Score ``corpus`` with a saved ensemble (no refitting); ``threshold`` overrides its own."""
    if threshold is not None:
        state = {**state, "calibration": {**state["calibration"], "method": "fixed",
                                          "threshold": float(threshold), "data": "--threshold"}}
    members = []
    for name, item in loaded.items():
        if item.calibration is None:
            raise RadarError(f"{item.checkpoint} ({name}) holds no calibrated threshold; "
                             "finish that run (`radar run`) before scoring with its ensemble")
        if item.vocab.state_dict() != corpus.vocab.state_dict():
            raise RadarError(f"{name} was trained with another vocabulary than the ensemble's "
                             "other detectors; retrain them in one `radar run`")
        results = score_corpus(item, corpus, batch_size=batch_size, device=device)
        members.append(DetectorScores(name, item.checkpoint, item.calibration.threshold,
                                      np.empty(0), results))
    outcome, _ = combine_members(config, members, corpus, fitted=state)
    return outcome


def ensemble_records(corpus: SessionCorpus, outcome: EnsembleOutcome, file_names: list[str],
                     session_ids: list[np.ndarray], session_keys: list[list[str] | None]
                     ) -> Iterator[dict[str, Any]]:
    """Records of the ensemble: combined score, every detector's say, severity."""
    members = outcome.members
    # The explanation comes from the detector that found the session most unusual.
    lead = np.argmax(np.nan_to_num(outcome.normalized, nan=-np.inf), axis=1)
    n = corpus.n_sessions
    explain = np.stack([m.results.explain for m in members], axis=0) if members else None
    merged = SessionResults(outcome.combined, {}, explain[lead, np.arange(n)]
                            if explain is not None else np.empty((n, 0, 5)))
    base = iter_result_records(corpus, merged, outcome.calibration.threshold, file_names,
                               session_ids, session_keys)
    for i, record in enumerate(base):
        record["detectors"] = {
            m.name: {"score": float(m.results.score[i]),
                     "normalized": float(outcome.normalized[i, j]),
                     "flagged": bool(m.results.score[i] > m.threshold)}
            for j, m in enumerate(members)}
        record["explained_by"] = members[int(lead[i])].name
        record["severity"] = LEVELS[int(outcome.severity.level[i])]
        record["severity_reasons"] = outcome.severity.reasons[i]
        yield record


def write_ensemble_state(run_dir: Path, config: RadarConfig, outcome: EnsembleOutcome,
                         scorer) -> None:
    state = {"format_version": 1, "method": config.ensemble.method,
             "normalize": config.ensemble.normalize,
             "checkpoints": {m.name: str(m.checkpoint.resolve()) for m in outcome.members},
             "scorer": scorer.state_dict(), "calibration": outcome.calibration.to_dict(),
             "ensemble": asdict(config.ensemble), "severity": asdict(config.severity)}
    atomic_write_text(run_dir / ENSEMBLE_FILE, json.dumps(state, indent=2))


def write_calibration(folder: Path, calibration: Calibration) -> None:
    """calibration.json beside a results file, for reports."""
    data = calibration.to_dict()
    data["describe"] = calibration.describe()
    atomic_write_text(folder / "calibration.json", json.dumps(data, indent=2))


def agreement(members: list[DetectorScores]) -> dict:
    """Pairwise decision agreement and rank correlation, and how many detectors flag each."""
    from scipy.stats import spearmanr

    names = [m.name for m in members]
    flags = np.stack([m.results.score > m.threshold for m in members], axis=1)
    pairs = {}
    for a in range(len(members)):
        for b in range(a + 1, len(members)):
            x, y = members[a].results.score, members[b].results.score
            ok = np.isfinite(x) & np.isfinite(y)
            rho = spearmanr(x[ok], y[ok]).statistic if ok.sum() > 2 else None
            either = flags[:, a] | flags[:, b]
            pairs[f"{names[a]}~{names[b]}"] = {
                "agree": float((flags[:, a] == flags[:, b]).mean()),
                "jaccard_flagged": float((flags[:, a] & flags[:, b]).sum() / either.sum())
                if either.any() else None,
                "spearman": None if rho is None or np.isnan(rho) else float(rho)}
    counts = flags.sum(axis=1)
    return {"pairs": pairs,
            "flagged_by": {str(k): int((counts == k).sum()) for k in range(len(members) + 1)}}
