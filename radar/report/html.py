"""Render a report dict (see :mod:`radar.report.build`) as self-contained HTML or Markdown.

The HTML has no scripts and loads nothing: styles are inline, plots are PNG data
URIs, every value is escaped. It opens from a mail attachment or a file share.
"""

from __future__ import annotations

import base64
import html

import yaml

from radar.scoring.tally import histogram_note

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem;
margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right;vertical-align:top}
th{background:#f6f8fa}td.l,th.l{text-align:left}
.met{color:#1a7f37;font-weight:600}.unmet{color:#cf222e;font-weight:600}.na{color:#6e7781}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:6px}
img{max-width:100%;border:1px solid #d0d7de;margin:.4rem 0}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem}
.focus{background:#ffebe9}
"""

LEVEL_COLOURS = {"NORMAL": "#1a7f37", "LOW": "#9a6700", "MEDIUM": "#bc4c00",
                 "HIGH": "#cf222e", "CRITICAL": "#82071e"}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """``rows`` hold already-escaped HTML; the first ``left`` columns align left."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures_note(metrics: dict) -> str:
    """Which quality figures are exact and which come from bounded histograms (empty for
    reports written before report.json said so)."""
    figures = metrics.get("figures") or {}
    if not figures:
        return ""
    return f" {histogram_note(figures)}; {figures.get('plots', '')}."


def _metric_cells(m: dict) -> list[str]:
    """The METRIC_HEADER columns of one metrics dict (numbers only: safe in HTML and
    Markdown alike)."""
    return [str(m[k]) for k in ("n", "n_anomalous", "tp", "fp", "fn")] + [
        _num(m.get(k)) for k in ("precision", "recall", "f1", "roc_auc", "pr_auc", "best_f1")]


METRIC_HEADER = ["sessions", "anomalous", "TP", "FP", "FN", "precision", "recall", "F1",
                 "ROC-AUC", "PR-AUC", "best F1*"]


def _img(images: dict[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _criteria_html(rows: list[dict]) -> str:
    out = []
    for row in rows:
        status = ('<span class="na">not measured</span>' if row["met"] is None else
                  '<span class="met">met</span>' if row["met"] else
                  '<span class="unmet">not met</span>')
        out.append([_e(row["criterion"]), _num(row["value"]), status, _e(row["source"]),
                    _e(row["note"])])
    return _table(["criterion", "measured", "status", "from", "note"], out, left=1)


def _top_html(items: list[dict]) -> str:
    parts = []
    for item in items:
        sev = item.get("severity")
        badge = (f' <b style="color:{LEVEL_COLOURS.get(sev, "#000")}">{_e(sev)}</b>'
                 if sev else "")
        why = "; ".join(_e(_position_text(p)) for p in item.get("top_positions") or []) or "–"
        reasons = item.get("severity_reasons") or []
        lines = item.get("log_excerpt")
        if lines:
            log = "".join(f'<div class="{"focus" if line["focus"] else ""}">'
                          f'{line["line"]:>4}  {_e(line["text"])}</div>' for line in lines)
            log = f"<pre>{log}</pre>"
        else:
            log = ('<p class="na">original log lines: day file not found</p>'
                   if lines is None else '<p class="na">no original log lines</p>')
        parts.append(
            f"<h3>{_e(item['service_name'])} · {_e(item['file'])} · session "
            f"{_e(item['session_id'])}{badge}</h3><p>score {_num(item['anomaly_score'], 4)}"
            f" · has_error {_e(item.get('has_error'))} · has_warn {_e(item.get('has_warn'))}"
            f"</p><p>why: {why}</p>"
            + (f"<p>severity: {_e('; '.join(reasons))}</p>" if reasons else "") + log
            + _source_html(item.get("top_positions") or []))
    return "".join(parts) or '<p class="na">no session was flagged</p>'


def _source_html(positions: list[dict]) -> str:
    """The code behind each explained event that ``radar source`` linked (``source`` and
    its ``code`` lines, as radar.source.annotate writes them into flagged records)."""
    parts = []
    for item in positions:
        source = item.get("source")
        if not source:
            continue
        where = (f"position {_e(item['position'])}: {_e(source['file'])}:{_e(source['line'])}"
                 f" in {_e(source.get('function') or '?')} ({_e(source.get('level') or '?')}, "
                 f"match {_num(source.get('score'), 2)})")
        code = source.get("code") or []
        text = "".join(f'<div class="{"focus" if line["focus"] else ""}">'
                       f'{line["line"]:>5}  {_e(line["text"])}</div>' for line in code)
        parts.append(f"<p>code: {where}</p>" + (f"<pre>{text}</pre>" if text else
                                                f"<pre>{_e(source['statement'])}</pre>"))
    return "".join(parts)


def _position_text(item: dict) -> str:
    if item.get("kind") == "unseen":
        return f"position {item['position']}: an event never seen in training"
    if item.get("kind") == "end":
        return f"position {item['position']}: the session ended where more was expected"
    p = item.get("probability")
    return (f"position {item['position']}: event {item.get('event_id')} ranked "
            f"{item.get('rank')}" + (f" (p={p:.2g})" if p is not None else ""))


def _label_free_rows(facts: dict) -> list[tuple[str, str]]:
    """(what, value) rows of the label-free facts: plain text, escape before HTML."""
    rows = [("sessions scored", str(facts["sessions"])),
            ("flagged", f"{facts['flagged']} ({facts['flag_rate']:.2%})"),
            ("flagged with ERROR lines", str(facts["flagged_with_error"])),
            ("flagged without ERROR lines", str(facts["flagged_without_error"])),
            ("sessions with ERROR lines: flagged / not flagged",
             f"{facts['error_sessions_flagged']} / {facts['error_sessions_not_flagged']}")]
    injected = facts.get("injected")
    if injected:
        rows.append(("false alarms on untouched held-out sessions",
                     _num(injected.get("false_alarm_rate"))))
        for kind, entry in (injected.get("per_kind") or {}).items():
            rows.append((f"recall on injected '{kind}' corruptions (n={entry.get('n')})",
                         _num(entry.get("recall"))))
    return rows


def _label_free_html(report: dict) -> str:
    facts = report.get("label_free")
    if not facts:
        return ""
    rows = [[_e(what), _e(value)] for what, value in _label_free_rows(facts)]
    injected = facts.get("injected") or {}
    caveat = (f'<p class="na">{_e(injected["caveat"])}</p>' if injected.get("caveat") else
              '<p class="na">no injected-corruption estimate in this run (quality.json)</p>')
    return "<h2>What holds without labels</h2>" + _table(["", "value"], rows) + caveat


def _ensemble_html(report: dict) -> str:
    parts = []
    agreement = report.get("agreement")
    if agreement:
        rows = [[_e(pair), _num(v["agree"]), _num(v["jaccard_flagged"]), _num(v["spearman"])]
                for pair, v in agreement["pairs"].items()]
        parts.append("<h2>Agreement between detectors</h2>" + _table(
            ["pair", "same decision", "overlap of flagged (Jaccard)", "rank correlation"],
            rows))
        flagged_by = agreement["flagged_by"]
        parts.append("<p>sessions flagged by k detectors: " + ", ".join(
            f"k={_e(k)}: {_e(v)}" for k, v in flagged_by.items()) + "</p>")
    severity = report.get("severity")
    if severity:
        from radar.scoring.severity import LEVELS

        for key, title in (("per_service", "service"), ("per_day", "day")):
            rows = [[_e(name)] + [_e(counts[level]) for level in LEVELS]
                    for name, counts in severity[key].items()]
            parts.append(f"<h2>Severity per {title}</h2>" + _table([title, *LEVELS], rows))
    return "".join(parts)


def _no_labels_reason(data: dict) -> str:
    unused = data.get("unused_label_file")
    if unused:
        return (f"The label file {_e(unused)} labels none of the reported sessions (does it "
                "belong to these day files?).")
    return "No label file was given."


def render_html(report: dict, images: dict[str, bytes]) -> str:
    m = report["metrics"]
    data = report["data"]
    weak = ('<p class="warn"><b>Weak labels.</b> ' + _no_labels_reason(data) + ' So quality is '
            "measured against <code>has_error</code>: sessions with an ERROR line count as "
            "anomalous. That is neither necessary nor sufficient for an anomaly; treat these "
            "numbers as a rough guide.</p>" if data["weak_labels"] else "")
    per_service = [[_e(name)] + _metric_cells(entry) for name, entry in m["per_service"].items()]
    per_service.append(["<b>all</b>"] + _metric_cells(m))
    det_rows = []
    for name, entry in report["per_detector"].items():
        dm = entry.get("metrics")
        tr = entry.get("training") or {}
        det_rows.append([_e(name), _num(tr.get("train_loss")), _num(tr.get("val_loss")),
                         _num(tr.get("gap"))] + ([_num(dm.get(k)) for k in
                                                  ("precision", "recall", "f1", "roc_auc")]
                                                 if dm else ["–"] * 4))
    if report["ensemble"]:
        det_rows.append(["<b>ensemble</b>", "–", "–", "–"] +
                        [_num(m.get(k)) for k in ("precision", "recall", "f1", "roc_auc")])
    threshold = report["threshold"]
    calibration = threshold.get("calibration") or {}
    analysis = report["analysis"]
    plots = "".join(_img(images, name, name.replace("_", " ")) for name in
                    ("roc_pr", "score_histogram", "anomalies_per_service",
                     "anomalies_per_day", "severity_by_service"))
    curves = "".join(_img(images, name, name.replace("_", " ")) for name in sorted(images)
                     if name.startswith("training_curve_"))
    body = f"""
<h1>{_e(report['title'])}</h1>
<p>generated {_e(report['generated_at'])} · run folder <code>{_e(report['run_dir'])}</code> ·
detectors {_e(', '.join(report['detectors']))}{' + ensemble' if report['ensemble'] else ''}</p>
{weak}
<h2>Success criteria</h2>
{_criteria_html(report['criteria'])}
{_label_free_html(report)}
<h2>Detection quality</h2>
<p>threshold {_num(threshold['value'], 4)} ({_e(calibration.get('describe') or
threshold['source'])}) · labels: {_e(data['label_source'])}</p>
{_table(['service'] + METRIC_HEADER, per_service)}
<p class="na">* best F1 is found on these very data: an upper bound, never the threshold in
use.{_e(_figures_note(m))}</p>
{_table(['detector', 'train loss', 'val loss', 'gap', 'precision', 'recall', 'F1',
         'ROC-AUC'], det_rows)}
{plots}
{_ensemble_html(report)}
<h2>Training</h2>
{curves or '<p class="na">no training metrics found</p>'}
<h2>Data</h2>
<p>{len(data['train_days'])} training day(s), {len(data['val_days'])} validation day(s)
scored: {_e(', '.join(data['val_days']))}; {data['sessions']} sessions,
{analysis['anomalies']} flagged ({analysis['anomaly_share']:.2%}).</p>
{_table(['service', 'sessions', 'flagged', 'share', 'has_error'],
        [[_e(k), _e(v['sessions']), _e(v['anomalies']), f"{v['share']:.2%}",
          _e(v['has_error'])] for k, v in analysis['per_service'].items()])}
<h2>Top anomalies</h2>
{_top_html(analysis['top_anomalies'])}
<h2>Config</h2>
<pre>{_e(yaml.safe_dump(report['config'], sort_keys=False))}</pre>
"""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(report['title'])}</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def _md(value) -> str:
    """Text for a Markdown line or table cell: HTML escaped (Markdown passes raw HTML
    through, and log lines may hold any), pipes and line breaks neutralised."""
    return _e(value).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def render_markdown(report: dict) -> str:
    m = report["metrics"]
    data = report["data"]
    lines = [f"# {report['title']}", "",
             (f"Generated {report['generated_at']}; detectors "
             f"{', '.join(report['detectors'])}{' + ensemble' if report['ensemble'] else ''}."),
             ""]
    if data["weak_labels"]:
        lines += [(f"> **Weak labels**: {_no_labels_reason(data)} Quality is measured against "
                  "`has_error`."), ""]
    lines += ["## Success criteria", "", "| criterion | measured | status | from |",
              "| --- | ---: | --- | --- |"]
    for row in report["criteria"]:
        status = "not measured" if row["met"] is None else "met" if row["met"] else "NOT met"
        lines.append(f"| {_md(row['criterion'])} | {_num(row['value'])} | {status} | "
                     f"{_md(row['source'])} |")
    facts = report.get("label_free")
    if facts:
        lines += ["", "## What holds without labels", "", "| | value |", "| --- | ---: |"]
        lines += [f"| {_md(what)} | {_md(value)} |" for what, value in _label_free_rows(facts)]
        caveat = (facts.get("injected") or {}).get("caveat")
        if caveat:
            lines += ["", f"> {_md(caveat)}"]
    lines += ["", "## Detection quality", "",
              (f"Threshold {_num(report['threshold']['value'], 4)}; labels: "
              f"{_md(data['label_source'])}."), "",
              "| service | " + " | ".join(METRIC_HEADER) + " |",
              "| --- |" + " ---: |" * len(METRIC_HEADER)]
    for name, entry in list(m["per_service"].items()) + [("**all**", m)]:
        cells = _metric_cells(entry)
        lines.append(f"| {name if name == '**all**' else _md(name)} | " + " | ".join(cells)
                     + " |")
    if _figures_note(m):
        lines += ["", _md(_figures_note(m).strip())]
    lines += ["", "## Detectors", "", "| detector | train loss | val loss | gap | F1 |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, entry in report["per_detector"].items():
        tr = entry.get("training") or {}
        f1 = (entry.get("metrics") or {}).get("f1")
        lines.append(f"| {_md(name)} | {_num(tr.get('train_loss'))} | {_num(tr.get('val_loss'))} | "
                     f"{_num(tr.get('gap'))} | {_num(f1)} |")
    lines += ["", "## Top anomalies", ""]
    for item in report["analysis"]["top_anomalies"]:
        lines.append(f"- {_md(item['service_name'])} {_md(item['file'])} session "
                     f"{_md(item['session_id'])}: score {_num(item['anomaly_score'], 4)}"
                     + (f", {_md(item['severity'])}" if item.get("severity") else "") + "; "
                     + "; ".join(_md(_position_text(p)) for p in item.get("top_positions") or []))
    lines += ["", "Plots and log lines: report.html. Machine-readable: report.json.", ""]
    return "\n".join(lines)

