"""Synthetic microservice logs in the user's day-file format, with ground-truth labels.

The demo data and the test fixtures come from here. Six services (gateway, research,
manager, auth, billing, notification) each run a few request workflows written as small
grammars: sequences with optional steps, branches, loops (retries, pagination, batch
items) and interleaved parallel sub-calls, sharing common events such as "request
received" / "response sent". A seed also jitters every probability and loop length, so
each seed is a slightly different system of the same family, not one fixed puzzle.
With ``drift`` > 0 the system also moves from day to day, as real services do (traffic
mix, feature usage): same grammar, shifted path frequencies.

Normal data is not clean: rare but legitimate paths (a route reload, a refund), WARN
lines (slow query, retry), benign ERROR lines (a client 4xx, a timeout that a retry
recovers), and background lines (heartbeats, metrics, GC) that imperfect session
grouping mixes into some sessions. So ``has_error`` is only a weak label and novelty
alone is not a perfect detector. Anomalies are injected by kind (:data:`ANOMALY_KINDS`:
unseen event, missing step, out-of-order steps, repetition burst, truncation, another
service's event, error cascade) and written to ``labels.csv``; many carry no error line.

Output of :func:`generate`: ``preprocessed_logs_YYYY-MM-DD.json`` per day (a JSON array,
byte-identical to ``json.dump(sessions, f, ensure_ascii=False)``), ``labels.csv``
(``file,session_id,label,anomaly_kind``) and ``templates.tsv`` (``event_id, service, level,
template``).

Modules, in the order data flows through them:

- :mod:`~radar.data.synth.templates`: the template table (key, service, level, text, id).
- :mod:`~radar.data.synth.grammar`: the workflow grammar's nodes, their jitter and drift.
- :mod:`~radar.data.synth.services`: the six services' workflows; ``SystemModel``.
- :mod:`~radar.data.synth.anomalies`: the anomaly kinds and their injection.
- :mod:`~radar.data.synth.traffic`: one day's sessions, their start times, a release.
- :mod:`~radar.data.synth.render`: raw log lines and the day-file record of a session.
- :mod:`~radar.data.synth.writer`: :func:`generate` writes the files;
  :func:`read_ground_truth` reads the labels back.
"""

from radar.data.synth.anomalies import ANOMALY_KINDS
from radar.data.synth.templates import RELEASE_KEY, TEMPLATES
from radar.data.synth.writer import generate, read_ground_truth

__all__ = ["ANOMALY_KINDS", "RELEASE_KEY", "TEMPLATES", "generate", "read_ground_truth"]
