"""Built-in input formats of ``radar convert``: HDFS_100k JSON Lines and DeepLog-style
key-sequence files. Registered through the ``radar`` entry-point group like any
third-party converter package; the converters themselves live in radar.data.convert."""

from __future__ import annotations

from radar import hookimpl


@hookimpl
def register_converters(register):
    """Register the built-in input formats."""
    from radar.data.convert import HDFS100kConverter, KeySequenceConverter

    register(HDFS100kConverter)
    register(KeySequenceConverter)
