"""``radar serve``: an HTTP scoring API (FastAPI) over a trained run.

Modules: :mod:`~radar.serve.app` (the app factory, routes, auth, limits),
:mod:`~radar.serve.scoring` (in-memory sessions → the records ``radar detect``
writes), :mod:`~radar.serve.batching` (micro-batching across requests),
:mod:`~radar.serve.middleware` (body limit, request metrics),
:mod:`~radar.serve.metrics` (Prometheus text), :mod:`~radar.serve.schemas`
(pydantic models) and :mod:`~radar.serve.describe` (``/v1/models``). FastAPI and
uvicorn come with the ``serve`` extra (``pip install 'radar-logs[serve]'``); nothing
here is imported by ``radar --help``.
"""
