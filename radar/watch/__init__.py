"""``radar watch``: online detection on live log streams.

Raw lines from followed files (``tail -F``) or standard input are parsed, mined and
grouped by ``radar ingest``'s own code into sessions; closed sessions are scored in
micro-batches by a trained run and written as the records ``radar detect`` writes,
plus when the session was first seen, when and why it closed and how long its
record took. Modules: :mod:`~radar.watch.sources` (files and stdin),
:mod:`~radar.watch.sessions` (online grouping), :mod:`~radar.watch.scoring` (the one
adapter onto the scoring code), :mod:`~radar.watch.state` (the checkpoint),
:mod:`~radar.watch.sink` (JSON lines and the webhook), :mod:`~radar.watch.metrics`
(stats line, Prometheus) and :mod:`~radar.watch.watcher` (the loop).
"""

from radar.watch.watcher import Watcher, WatchOptions

__all__ = ["WatchOptions", "Watcher"]
