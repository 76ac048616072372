"""Request and response models of the scoring API (pydantic), and so its OpenAPI schema.

A session is the user's record format: only ``event_sequence`` is required; the
other fields ``radar detect`` reads are optional here (``service_name`` defaults
to ``"unknown"``, the flags to false). Types are strict, as the day-file reader's
checks are: an event id is a JSON integer in [0, 2^31 - 1], never ``1.0`` or
``true``. Fields the model never reads (``token_ids``, ``attention_mask``,
``original_logs``) are accepted and ignored, so day-file records can be posted as
they are. The response models describe the answer for the docs; the server writes
the records itself (they carry each detector's own extra scores).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from radar.data.records import MAX_EVENT_ID, SESSION_ID_RANGE

DEFAULT_SERVICE = "unknown"

EventId = Annotated[StrictInt, Field(ge=0, le=MAX_EVENT_ID)]


def _unicode_text(value: str) -> str:
    """Refuse lone surrogates (JSON's "\\ud800"): they are not text and cannot be
    written back as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text: a lone surrogate "
                         f"(U+{ord(value[exc.start]):04X}) at character {exc.start}") from None
    return value


Text = Annotated[StrictStr, AfterValidator(_unicode_text)]


class SessionIn(BaseModel):
    """One session to score, as in a day file."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={
        "example": {"session_id": 17, "service_name": "gateway",
                    "event_sequence": [12, 7, 7, 31, 2], "has_error": False, "has_warn": False}})

    event_sequence: list[EventId] = Field(
        min_length=1, description="Event (template) ids in order; at least one.")
    service_name: Text = Field(DEFAULT_SERVICE, description="Service the session ran in.")
    has_error: StrictBool = Field(False, description="The session has ERROR lines.")
    has_warn: StrictBool = Field(False, description="The session has WARN lines.")
    session_id: Annotated[StrictInt, Field(ge=SESSION_ID_RANGE[0], le=SESSION_ID_RANGE[1])] \
        | None = Field(None, description="Echoed back; null when not given.")
    session_key: Text | None = Field(None, description="Echoed back when given.")


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sessions: list[SessionIn] = Field(
        description="Sessions to score; results come back in the same order.")


class Explanation(BaseModel):
    position: int
    event_id: int | None
    kind: Literal["event", "unseen", "end"]
    rank: int | None
    probability: float | None
    source: dict | None = Field(None, description="The logging statement that printed the "
                                "event (file, line, function, level, statement), when the run "
                                "has a source index; null when no statement fits.")


class DetectorVerdict(BaseModel):
    score: float | None = Field(description="The detector's raw score.")
    normalized: float | None = Field(description="Its score on the ensemble's common scale.")
    flagged: bool = Field(description="Above the detector's own calibrated threshold.")


class SessionResult(BaseModel):
    """One scored session: the record ``radar detect`` writes, with ``file`` null.

    A single-detector run adds the detector's extra scores (e.g. ``max_nll``); an
    ensemble run adds ``detectors``, ``explained_by``, ``severity`` and
    ``severity_reasons``.
    """

    model_config = ConfigDict(extra="allow")

    file: None = Field(None, description="Always null: the sessions came from no file.")
    session_id: int | None
    session_key: str | None = Field(description="Echoed back; null when not given.")
    service_name: str
    anomaly_score: float | None = Field(description="Higher is more anomalous (null only if "
                                                    "not finite).")
    is_anomaly: bool
    threshold: float
    has_error: bool
    has_warn: bool
    length: int = Field(description="Events in the session.")
    top_positions: list[Explanation]
    detectors: dict[str, DetectorVerdict] | None = Field(None, description="Ensemble runs.")
    explained_by: str | None = Field(None, description="Ensemble runs: the detector whose "
                                                       "explanation top_positions is.")
    severity: Literal["NORMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"] | None = Field(
        None, description="Ensemble runs.")
    severity_reasons: list[str] | None = Field(None, description="Ensemble runs.")


class ScoreResponse(BaseModel):
    model: str = Field(description="What scored: the detector, or ensemble:METHOD(names).")
    n_sessions: int
    n_anomalies: int
    results: list[SessionResult]


class HealthResponse(BaseModel):
    status: Literal["ready", "loading", "failed"]
    detail: str | None = None


class ErrorResponse(BaseModel):
    detail: Any = Field(description="What was wrong: a message, or a list of field errors "
                                    "(loc, msg, type) for a 422.")
