"""Render an HTML report in headless Chromium and check that it really shows something.

Takes a screenshot of the page (1280 px wide, 4000 px tall by default) and fails,
with exit status 1, when:

- chromium is not installed (``apt-get install -y chromium`` installs it on Debian);
- chromium exits non-zero or times out;
- the page logs a console error, throws an uncaught exception or rejection, or a
  resource (an embedded image, say) fails to load;
- the screenshot is blank: every pixel the same colour.

On success it prints the screenshot path::

    python benchmarks/report_render.py runs/demo/report.html
    python benchmarks/report_render.py report.html --screenshot /tmp/report.png
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium's --enable-logging=stderr prints console messages all at level INFO, so a
# console.error looks like a console.log. A script injected first into a copy of the
# page tags errors, uncaught exceptions, rejected promises and resources that fail to
# load (a broken embedded image included) with this marker.
MARKER = "RADAR-PAGE-ERROR: "
PROBE = """<script>(function () {
  var log = console.log.bind(console), mark = "MARKER";
  console.error = function () { log(mark + Array.prototype.join.call(arguments, " ")); };
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    log(mark + (e.message || ("failed to load " + (t.src || t.href || t.tagName))));
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    log(mark + "unhandled rejection: " + e.reason);
  });
})();</script>""".replace("MARKER", MARKER)
PAGE_ERROR = re.compile(re.escape(MARKER) + r"(.*?)\", source: ")


def with_probe(html: str) -> str:
    """``html`` with :data:`PROBE` as the first thing in its head (or body, or page)."""
    for tag in (r"<head\b[^>]*>", r"<html\b[^>]*>", r"<!doctype[^>]*>"):
        match = re.search(tag, html, re.IGNORECASE)
        if match:
            return html[:match.end()] + PROBE + html[match.end():]
    return PROBE + html


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def is_blank(png: Path) -> bool:
    """True when every pixel of the screenshot has the same colour."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(png)
    flat = pixels.reshape(-1, pixels.shape[-1]) if pixels.ndim == 3 else pixels.reshape(-1, 1)
    return bool(np.all(flat == flat[0]))


def run_chromium(chromium: str, page: Path, screenshot: Path, width: int, height: int,
                 timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="radar-chromium-") as profile:
        command = [chromium, "--headless", "--disable-gpu", "--no-sandbox",
                   "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                   f"--user-data-dir={profile}", f"--screenshot={screenshot}",
                   f"--window-size={width},{height}", page.resolve().as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False, env={**os.environ, "HOME": profile})


def render(html: Path, screenshot: Path, width: int, height: int, timeout: float
           ) -> list[str]:
    """Screenshot ``html``; return the problems found (empty when it rendered cleanly).

    The probed copy of the page sits beside the original (so relative links resolve)
    and the screenshot is written beside its target, then renamed into place.
    """
    chromium = find_chromium()
    if chromium is None:
        return ["chromium is not installed; install it with: apt-get install -y chromium"]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page = html.with_name(f".{html.stem}.render-check{html.suffix}")
    partial = screenshot.with_name(f".{screenshot.stem}.partial.png")
    try:
        page.write_text(with_probe(html.read_text(encoding="utf-8")), encoding="utf-8")
        partial.unlink(missing_ok=True)
        done = run_chromium(chromium, page, partial, width, height, timeout)
    except subprocess.TimeoutExpired:
        return [f"chromium did not finish within {timeout:.0f} s"]
    finally:
        page.unlink(missing_ok=True)
    problems = []
    if done.returncode != 0:
        problems.append(f"chromium exited with status {done.returncode}:\n{done.stderr[-2000:]}")
    problems += [f"page error: {m.group(1)[:300]}" for m in PAGE_ERROR.finditer(done.stderr)]
    if not partial.is_file() or partial.stat().st_size == 0:
        problems.append("chromium wrote no screenshot")
        return problems
    os.replace(partial, screenshot)
    if is_blank(screenshot):
        problems.append(f"the screenshot {screenshot} is blank (a single colour)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="HTML file to render")
    parser.add_argument("--screenshot", type=Path,
                        help="PNG to write (default: HTML path with .png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"error: {args.html} is not a file", file=sys.stderr)
        return 1
    screenshot = args.screenshot or args.html.with_suffix(".png")
    problems = render(args.html, screenshot, args.width, args.height, args.timeout)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(screenshot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
