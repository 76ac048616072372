"""Progress on stderr: a plain line with an ETA when stderr is not a terminal."""

from __future__ import annotations

import re

from radar import console
from radar.console import step_progress


def test_progress_lines_go_to_stderr_with_an_eta(capsys, monkeypatch):
    clock = iter([0.0, 10.0, 20.0, 25.0, 35.0, 41.0])     # start, 4 updates, finish
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    with step_progress(100, "training toy (steps)", completed=20, interval_s=15) as update:
        update(25)      # t=10: first update, printed
        update(30)      # t=20: 10 s after the last line, silent
        update(40)      # t=25: 15 s, printed
        update(45)      # t=35: silent
    out, err = capsys.readouterr()
    assert out == ""
    start, *lines = err.strip().splitlines()
    assert start == "training toy (steps): 20/100 (20.0%), 0:00:00 elapsed, eta unknown"
    # Resumed at 20: the rate counts only the 5 steps done in 10 s, so 75 left take 150 s.
    assert lines[0] == "training toy (steps): 25/100 (25.0%), 0:00:10 elapsed, eta 0:02:30"
    assert lines[1].startswith("training toy (steps): 40/100 (40.0%), 0:00:25 elapsed, eta ")
    assert re.fullmatch(r"training toy \(steps\): 45/100 \(45\.0%\), 0:00:41 elapsed, eta "
                        r"0:\d\d:\d\d", lines[2])     # the final state, at the end
    assert len(lines) == 3


def test_a_progress_inside_another_is_silent(capsys):
    with step_progress(10, "outer", interval_s=0) as outer, \
            step_progress(10, "inner", interval_s=0) as inner:
        inner(5)
        outer(5)
    err = capsys.readouterr().err
    assert "outer: 5/10" in err and "inner" not in err
