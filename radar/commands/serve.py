"""``radar serve``: the HTTP scoring API over a trained run (needs the ``serve`` extra)."""

from __future__ import annotations

import ipaddress
import os

import click

from radar.console import err_console
from radar.errors import RadarError

MIB = 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(env_name: str) -> str | None:
    """The API token from ``env_name`` (None when unset); an empty value is an error."""
    value = os.environ.get(env_name)
    if value is None:
        return None
    if not value.strip():
        raise RadarError(f"{env_name} is set but empty; unset it to serve without a token, or "
                         "set it to the token clients must send")
    return value.strip()


def _import_server():
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise RadarError("radar serve needs the serve extra: pip install 'radar-logs[serve]'"
                         ) from None
    return uvicorn


@click.command("serve")
@click.option("--run", "run_dir", required=True, type=click.Path(),
              help="Run folder to serve: a multi-detector run (ensemble.json) or a "
                   "single-detector run (best_model.pt).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes the API to the network.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--max-batch-sessions", default=256, show_default=True,
              type=click.IntRange(min=1),
              help="Sessions merged into one model call across concurrent requests.")
@click.option("--batch-wait-ms", default=2.0, show_default=True,
              type=click.FloatRange(0, 1000),
              help="How long an idle model waits for more requests to fill a batch.")
@click.option("--max-sessions-per-request", default=1000, show_default=True,
              type=click.IntRange(min=1))
@click.option("--max-body-bytes", default=8 * MIB, show_default=True,
              type=click.IntRange(min=1), help="Largest request body accepted (413 above).")
@click.option("--max-events", default=65536, show_default=True, type=click.IntRange(min=1),
              help="Most events per session (longer sessions are windowed like radar detect; "
                   "this bound is for safety).")
@click.option("--max-queued-sessions", default=8192, show_default=True,
              type=click.IntRange(min=1),
              help="Sessions allowed to wait for the model before requests get 503.")
@click.option("--header-timeout", "header_timeout_s", default=10.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds a connection has to send its request line and headers (408 after).")
@click.option("--body-timeout", "body_timeout_s", default=30.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds a request has to send its whole body (408 after).")
@click.option("--max-connections", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Open connections at most (also bounded by the descriptor limit); past "
                   "it the slowest still sending headers is closed, else 503.")
@click.option("--threshold", type=float,
              help="Override the run's calibrated threshold (needed for a run that never "
                   "finished calibration).")
@click.option("--token-env", default="RADAR_API_TOKEN", show_default=True,
              help="Environment variable holding the bearer token; unset = no auth.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="uvicorn's one line per request (metrics count requests either way).")
def serve_command(run_dir, host, port, device, max_batch_sessions, batch_wait_ms,
                  max_sessions_per_request, max_body_bytes, max_events, max_queued_sessions,
                  header_timeout_s, body_timeout_s, max_connections, threshold, token_env,
                  log_level, access_log):
    """Serve a trained run over HTTP: POST /v1/score, GET /v1/health, /v1/models, /metrics,
    and the triage page at /triage (docs/triage.md).

    Models load once (on the GPU when there is one); concurrent requests are
    micro-batched onto them. Results equal `radar detect` on the same sessions.
    API reference: docs/serve.md; interactive docs at /docs.
    """
    uvicorn = _import_server()
    from radar.device import resolve_device
    from radar.serve.app import ServeSettings, create_app
    from radar.serve.connections import uvicorn_config
    check_run(run_dir)                    # a wrong folder fails here, before binding
    resolve_device(device)
    token = read_token(token_env)
    if token is None and not is_loopback(host):
        err_console.print(f"[yellow]warning:[/yellow] serving on {host} without a token: "
                          f"anyone who can reach port {port} can score sessions; set "
                          f"{token_env} to require 'Authorization: Bearer <token>'")
    settings = ServeSettings(run_dir=run_dir, device=device,
                             max_batch_sessions=max_batch_sessions, batch_wait_ms=batch_wait_ms,
                             max_sessions_per_request=max_sessions_per_request,
                             max_body_bytes=max_body_bytes, max_events=max_events,
                             max_queued_sessions=max_queued_sessions, token=token,
                             threshold=threshold, header_timeout_s=header_timeout_s,
                             body_timeout_s=body_timeout_s, max_connections=max_connections)
    server = None

    def stop(_exc: BaseException) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_error=stop)
    server = uvicorn.Server(uvicorn_config(
        app, header_timeout_s=header_timeout_s, max_connections=max_connections,
        log_level=log_level, host=host, port=port, access_log=access_log,
        timeout_graceful_shutdown=10))
    err_console.print(f"radar serve: {run_dir} on http://{host}:{port} (docs /docs, triage "
                      f"page /triage), token "
                      f"{'required (' + token_env + ')' if token else 'not required'}")
    server.run()
    if app.state.radar.error:
        raise RadarError(f"could not load {run_dir}: {app.state.radar.error}")


def check_run(run_dir) -> None:
    """A run folder with a trained model to serve, or one line saying what is wrong."""
    from radar.errors import RadarError
    from radar.rundir import RunDir

    try:
        run = RunDir.open(run_dir)
        if run.is_ensemble and not run.ensemble_state.is_file():
            raise RadarError(f"{run.ensemble_state} does not exist; finish the run (`radar "
                             "run`) before serving it")
        run.checkpoints()
    except RadarError as exc:
        raise RadarError(f"--run {run_dir}: no trained model there ({exc})") from None
