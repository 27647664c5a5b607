"""The HTML audit report in a real headless Chromium: it renders (screenshot) and fits 1280 px.

Chromium comes from Debian (`apt-get install -y chromium`, which scripts/test.sh runs); the
test skips, saying so, only when no Chromium is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fogfed import audit
from tests.audit.conftest import Replayed

pytestmark = pytest.mark.anvil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
# Measures the page after layout and writes the answer where --dump-dom shows it.
PROBE = ("<script>window.addEventListener('load',()=>{const d=document.documentElement;"
         "document.title='OVERFLOW:'+(d.scrollWidth-d.clientWidth)+':WIDTH:'+d.clientWidth;});</script>")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (scripts/test.sh installs Debian's chromium with apt when it can)")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # a fresh profile every run
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


def _overflow(tmp: Path, page: Path) -> tuple[int, int]:
    """(horizontal overflow in CSS px, viewport width) of ``page`` at a 1280 px wide window."""
    probe = tmp / f"probe-{page.name}"
    text = re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", page.read_text())
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    proc = _chromium(tmp, "--window-size=1280,900", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    m = re.search(r"<title>OVERFLOW:(-?\d+):WIDTH:(\d+)</title>", proc.stdout)
    assert m, f"chromium gave no measurement (exit {proc.returncode}): {proc.stderr[-500:]}"
    return int(m[1]), int(m[2])


@pytest.fixture(scope="module")
def page(clean: Replayed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "audit.html"
    with audit.Checkpoint.open(clean.db) as cp:
        audit.write_html(audit.build_report(cp), cp, path)
    return path


def test_report_fits_1280_px(page: Path, tmp_path: Path) -> None:
    overflow, width = _overflow(tmp_path, page)
    assert width >= 1200, f"the viewport was {width} px, not ~1280"
    assert overflow <= 0, f"the report is {overflow} px wider than a 1280 px window"


def test_the_probe_sees_overflow(tmp_path: Path) -> None:
    """The same measurement on a page that does not fit: the check can fail."""
    wide = tmp_path / "wide.html"
    wide.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>"
                    "<table><tr><td>" + "0x" + "ab" * 400 + "</td></tr></table></body></html>")
    overflow, _ = _overflow(tmp_path, wide)
    assert overflow > 1000


def test_report_renders_a_screenshot(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "audit.png"
    proc = _chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), proc.stderr[-500:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a rendered page, not a blank one
    width = int.from_bytes(png[16:20], "big")
    assert width == 1280


def test_addresses_are_short_with_the_full_value_on_hover(clean: Replayed, page: Path) -> None:
    text = page.read_text()
    node = clean.script.accounts[1]
    assert f'title="{node}">{node[:6]}\u2026{node[-4:]}</span>' in text


def test_sorting_and_filtering_script_runs_under_the_pages_csp(page: Path, tmp_path: Path) -> None:
    """The CSP allows the one inline script by its hash: in Chromium it adds the filter boxes."""
    proc = _chromium(tmp_path, "--window-size=1280,900", "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert proc.stdout.count('class="filter"') >= 5, proc.stderr[-500:]
