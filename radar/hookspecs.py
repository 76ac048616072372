"""Hook specifications: markers and specs only (no torch import here).

Every hook *registers* things through a ``register`` callback, so a plugin
never has to check whether a call is meant for it. Call hooks with keywords.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("radar")
hookimpl = pluggy.HookimplMarker("radar")


@hookspec
def register_detectors(register):
    """Register :class:`radar.detector.Detector` subclasses.

    :param register: call ``register(DetectorClass)`` once per detector; the
        class attribute ``name`` is the name users type (``--detector NAME``).
    :returns: nothing; return values are ignored.
    """


@hookspec
def register_scorers(register):
    """Register scorer classes: ensemble combiners (:class:`radar.scoring.combine.Combiner`
    subclasses) and severity scorers (:class:`radar.scoring.severity.SeverityScorer`).

    :param register: call ``register(ScorerClass)`` once per scorer; the class
        attribute ``name`` is the name used in configs.
    :returns: nothing; return values are ignored.
    """


@hookspec
def register_converters(register):
    """Register input formats for ``radar convert`` (:class:`radar.data.convert.Converter`
    subclasses).

    :param register: call ``register(ConverterClass)`` once per format; the class
        attribute ``name`` is the subcommand (``radar convert NAME``).
    :returns: nothing; return values are ignored.
    """


@hookspec
def register_commands(cli):
    """Add extra commands to the ``radar`` command-line tool.

    :param cli: the root :class:`click.Group`; use ``@cli.command()`` to add one.
    :returns: nothing; return values are ignored.
    """
