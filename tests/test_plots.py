"""Report plots: each returns a PNG that decodes; `radar plot-curve`; the HTML render check."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import math
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.errors import RadarError
from radar.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEVELS = ["NORMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
ROOT = Path(__file__).resolve().parents[1]


def decode(png: bytes) -> np.ndarray:
    """The image of ``png``, checking it is a real, non-empty, non-blank PNG."""
    assert png[:8] == PNG_MAGIC
    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.shape[2] in (3, 4)
    assert not np.all(image == image[0, 0])
    return image


def metrics_records(steps: int = 20, with_val: bool = True) -> list[dict]:
    records = []
    for step in range(10, steps * 10 + 1, 10):
        loss = 6 * math.exp(-step / 40) + 0.3
        records.append({"kind": "train", "step": step, "epoch": 1, "loss": loss,
                        "avg_loss": loss, "lr": 1e-3 * min(1, step / 50),
                        "sessions_per_s": 100.0, "tokens_per_s": 1e4,
                        "padding_fraction": 0.2, "gpu_memory_gb": None})
        if with_val and step % 50 == 0:
            records.append({"kind": "val", "step": step, "epoch": 1, "val_loss": loss + 0.1,
                            "train_eval_loss": loss, "gap": 0.1})
    return records


def test_training_curve_full_run_has_standard_size():
    image = decode(plots.training_curve(metrics_records(), title="logbert"))
    assert image.shape[:2] == (460, 700)   # 7 x 4.6 in at dpi 100


@pytest.mark.parametrize("records", [
    metrics_records(with_val=False),                             # only train records
    metrics_records(steps=1, with_val=False),                    # one point
    [r for r in metrics_records() if r["kind"] == "val"],        # only validations
    [{"kind": "train", "step": 5, "loss": float("nan"), "lr": 0.0},
     {"kind": "train", "step": 6, "loss": float("inf"), "lr": 1e-4}],  # diverged
], ids=["train-only", "one-point", "val-only", "non-finite"])
def test_training_curve_edge_cases(records):
    decode(plots.training_curve(records))


def test_training_curve_without_records_raises():
    for records in ([], [{"kind": "other", "step": 1}]):
        with pytest.raises(RadarError, match="no training records"):
            plots.training_curve(records)


def labelled_scores(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(300), np.ones(30), -np.ones(20)].astype(int)
    score = np.r_[rng.normal(0, 1, 300), rng.normal(2.5, 1, 30), rng.normal(0, 1, 20)]
    return labels, score


def test_roc_pr_curves_several_scores_and_non_finite():
    labels, score = labelled_scores()
    broken = score.copy()
    broken[[0, 1, 2]] = [np.inf, np.nan, -np.inf]
    image = decode(plots.roc_pr_curves(labels, {"logbert": score, "deeplog": broken,
                                                "ensemble": (score + broken) / 2}))
    assert image.shape[:2] == (400, 900)


def test_roc_pr_curves_need_both_classes_and_matching_shapes():
    labels, score = labelled_scores()
    with pytest.raises(RadarError, match="both normal and anomalous"):
        plots.roc_pr_curves(np.zeros_like(labels), {"a": score})
    with pytest.raises(RadarError, match="both normal and anomalous"):
        plots.roc_pr_curves(np.where(labels == 1, 1, -1), {"a": score})
    with pytest.raises(RadarError, match="must match"):
        plots.roc_pr_curves(labels, {"a": score[:-1]})
    with pytest.raises(RadarError, match="no scores"):
        plots.roc_pr_curves(labels, {})


@pytest.mark.parametrize("case", ["labelled", "unlabelled-non-finite", "all-equal",
                                  "far-threshold", "nan-threshold"])
def test_score_histogram(case):
    labels, score = labelled_scores()
    threshold = 1.5
    if case == "unlabelled-non-finite":
        labels = None
        score[:5] = [np.inf, -np.inf, np.nan, np.nan, np.inf]
    elif case == "all-equal":
        score = np.full(score.shape, 0.25)
        threshold = 0.25
    elif case == "far-threshold":
        threshold = 1e6
    elif case == "nan-threshold":
        threshold = float("nan")
    image = decode(plots.score_histogram(score, labels, threshold, title=case))
    assert image.shape[:2] == (400, 700)


def test_score_histogram_rejects_nothing_to_draw():
    with pytest.raises(RadarError, match="no finite scores"):
        plots.score_histogram(np.array([np.nan, np.inf]), None, 0.0)
    with pytest.raises(RadarError, match="no finite scores"):
        plots.score_histogram(np.array([]), None, 0.0)
    with pytest.raises(RadarError, match="3 scores but 2 labels"):
        plots.score_histogram(np.zeros(3), np.zeros(2), 0.0)


def test_anomalies_per_service_and_day():
    services = {f"svc-{i}": {"sessions": 100 * (i + 1), "anomalies": i} for i in range(6)}
    services["idle"] = {"sessions": 0, "anomalies": 0}
    decode(plots.anomalies_per_service(services))
    many = {f"svc-{i:03d}": {"sessions": 10, "anomalies": i % 7} for i in range(120)}
    tall = decode(plots.anomalies_per_service(many))
    assert tall.shape[0] <= 100 * (1.3 + 0.3 * plots.MAX_ROWS) + 1   # capped height
    days = {f"preprocessed_logs_2026-01-{d:02d}.json": {"sessions": 500, "anomalies": d}
            for d in (3, 1, 2)}
    decode(plots.anomalies_per_day(days))
    assert plots.day_label("preprocessed_logs_2026-01-03.json") == "2026-01-03"
    assert plots.day_label("custom.json") == "custom.json"
    for function in (plots.anomalies_per_service, plots.anomalies_per_day):
        with pytest.raises(RadarError):
            function({})


def test_severity_by_service():
    counts = {"gateway": {"NORMAL": 900, "LOW": 40, "MEDIUM": 12, "HIGH": 5, "CRITICAL": 1},
              "auth": {"NORMAL": 300, "HIGH": 2},   # missing levels count as zero
              "quiet": {}}
    decode(plots.severity_by_service(counts, LEVELS))
    decode(plots.severity_by_service(counts, ["NORMAL", "WEIRD"]))   # unknown level colour
    with pytest.raises(RadarError):
        plots.severity_by_service({}, LEVELS)


def test_plots_leave_pyplot_alone():
    """No figure stays registered with pyplot (the functions never create pyplot figures)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.training_curve(metrics_records(steps=3))
    assert plt.get_fignums() == before


# --- radar plot-curve ---------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_plot_curve_command_default_and_output(tmp_path):
    write_metrics(tmp_path / "run", metrics_records())
    result = invoke("plot-curve", tmp_path / "run")
    assert result.exit_code == 0, result.output
    default = tmp_path / "run" / "training_curve.png"
    assert f"wrote {default}" in result.stdout
    decode(default.read_bytes())
    result = invoke("plot-curve", tmp_path / "run", "--output", tmp_path / "out" / "c.png")
    assert result.exit_code == 0, result.output
    decode((tmp_path / "out" / "c.png").read_bytes())
    assert not list((tmp_path / "out").glob(".*"))   # no temporary left behind


def test_plot_curve_command_multi_detector_run(tmp_path):
    for name in ("deeplog", "logbert"):
        write_metrics(tmp_path / "run" / name, metrics_records(with_val=name == "logbert"))
    (tmp_path / "run" / "split.json").write_text("{}")
    result = invoke("plot-curve", tmp_path / "run")
    assert result.exit_code == 0, result.output
    for name in ("deeplog", "logbert"):
        decode((tmp_path / "run" / name / "training_curve.png").read_bytes())
    result = invoke("plot-curve", tmp_path / "run", "-o", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "deeplog, logbert" in result.stderr and "drop --output" in result.stderr


def test_plot_curve_command_errors(tmp_path):
    result = invoke("plot-curve", tmp_path / "missing")
    assert result.exit_code == 1
    assert "missing is not a directory" in result.stderr and "output_dir" in result.stderr
    (tmp_path / "empty").mkdir()
    result = invoke("plot-curve", tmp_path / "empty")
    assert result.exit_code == 1
    assert f"no metrics.jsonl in {tmp_path / 'empty'}" in result.stderr
    write_metrics(tmp_path / "blank", [])
    result = invoke("plot-curve", tmp_path / "blank")
    assert result.exit_code == 1
    assert f"no training records in {tmp_path / 'blank' / 'metrics.jsonl'}" in result.stderr
    assert not (tmp_path / "blank" / "training_curve.png").exists()


def test_plot_curve_is_listed_in_help():
    result = invoke("--help")
    assert "plot-curve" in result.stdout


# --- benchmarks/report_render.py --------------------------------------------------------

def load_report_render():
    spec = importlib.util.spec_from_file_location(
        "report_render", ROOT / "benchmarks" / "report_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (apt-get install -y chromium)")
def test_report_render_screenshots_page_with_embedded_plot(tmp_path, capsys):
    report_render = load_report_render()
    png = plots.anomalies_per_service({"gateway": {"sessions": 200, "anomalies": 9}})
    page = tmp_path / "report.html"
    page.write_text("<!DOCTYPE html><html><head><title>RADAR</title></head><body>"
                    "<h1>RADAR report</h1><img alt='per service' src='data:image/png;base64,"
                    f"{base64.b64encode(png).decode()}'></body></html>")
    assert report_render.main([str(page), "--height", "700"]) == 0
    shot = Path(capsys.readouterr().out.strip())
    assert shot == tmp_path / "report.png"
    image = mpimg.imread(shot)
    assert image.shape[:2] == (700, 1280)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.png"]

    page.write_text("<html><body><h1>x</h1><script>console.error('boom')</script></body></html>")
    assert report_render.main([str(page), "--height", "300"]) == 1
    assert "page error: boom" in capsys.readouterr().err


def test_report_render_without_chromium(tmp_path, monkeypatch, capsys):
    report_render = load_report_render()
    monkeypatch.setattr(report_render.shutil, "which", lambda name: None)
    page = tmp_path / "report.html"
    page.write_text("<html><body>x</body></html>")
    assert report_render.main([str(page)]) == 1
    assert "apt-get install -y chromium" in capsys.readouterr().err
