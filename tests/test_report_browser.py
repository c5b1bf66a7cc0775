"""The HTML report: its content (formulas, provenance, slice labels) and a real browser render.

The browser test renders the page in headless Chromium (Debian's ``chromium`` package); it is
marked ``browser`` and skipped when ``/usr/bin/chromium`` is missing (``make test-browser``
installs it and runs this file).
"""

from __future__ import annotations

import doctest
import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp.analysis import _report_parts, write_report
from symqp.result import Result
from symqp.systems import archetypal3d

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]  # fmt: skip


def test_doctests():
    res = doctest.testmod(_report_parts, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def example1_result() -> Result:
    s = archetypal3d()
    V = s.U / 2
    g = [sp.expand(fk + sp.diff(V, v)) for fk, v in zip(s.field, s.variables)]
    return Result.from_expressions(
        s.names, V, g=g, backend="sr3", library="poly(5)", tau=0.75,
        metrics={"route": "symbolic", "route_reason": "symbolic result credible", "val_one_step_rel": 3.1e-9,
                 "box": s.box.tolist(), "command": "symqp fit data.npz --library 'poly(5)'"},
        timings={"field": 9.0, "total": 15.2},
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = write_report(example1_result(), out, eps=[0.1], dpi=60)
    return page


def test_report_shows_grad_V_g_f_and_provenance(report):
    text = report.read_text(encoding="utf-8")
    alts = re.findall(r'<img alt="([^"]+)"', text)
    formulas = ["U(x, y, z)", "dV/dx", "dV/dy", "dV/dz", "g_x", "g_y", "g_z", "f_x", "f_y", "f_z"]
    assert alts[: len(formulas)] == formulas
    for name in ("trajectories.png", "fields.png", "potentials.png", "densities.png"):
        assert name in alts
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", text))
    assert rows["symqp version"] == symqp.__version__
    assert rows["backend"] == "sr3" and rows["library"] == "poly(5)" and rows["route"] == "symbolic"
    assert rows["τ (sublevel threshold)"] == "0.75"
    assert html.unescape(rows["reproduce with"]) == "symqp fit data.npz --library 'poly(5)'"
    assert rows["metric: val_one_step_rel"] == "3.1e-09"
    assert rows["timings"] == "field 9 s, total 15.2 s"
    # 3-D figures are slices: the caption says where (the lowest stable point, x = ±1, y = z = 0)
    assert re.search(r"Downhill part .* — \(x, y\) plane at z = 0 \(fields.png\)", html.unescape(text))
    assert re.search(r"Quasipotential contours: .* — \(x, y\) plane at z = 0 \(potentials.png\)", html.unescape(text))


def _checked_copy(page: Path, dest: Path) -> Path:
    """The page with a first script that records errors and, once loaded, every image's state."""
    probe = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? 'failed to load ' + t.tagName + ' ' + (t.alt || '') : String(e.message));
}, true);
var _ce = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); _ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {alt: i.alt, ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight};
  });
  var pre = document.createElement('pre');
  pre.id = 'symqp-check';
  pre.textContent = JSON.stringify({imgs: imgs, errors: window.__errors});
  document.body.appendChild(pre);
});
</script>"""
    text = page.read_text(encoding="utf-8").replace("<head>", "<head>" + probe, 1)
    dest.write_text(text, encoding="utf-8")
    return dest


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)  # fmt: skip


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make test-browser installs it)")
def test_report_renders_in_chromium(report, tmp_path):
    copy = _checked_copy(report, report.parent / "checked.html")
    r = _chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", "--dump-dom",
                   copy.as_uri()], tmp_path / "profile")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="symqp-check">(.*?)</pre>', r.stdout, re.S)
    assert m, "the page did not finish loading"
    state = json.loads(html.unescape(m.group(1)))
    assert state["errors"] == []
    shown = {i["alt"]: i for i in state["imgs"]}
    on_disk = {p.name for p in report.parent.glob("*.png")}
    assert {a for a in shown if a.endswith(".png")} == on_disk - {a for a in on_disk if a.startswith("formula_")}
    assert len(state["imgs"]) == len(on_disk)  # every PNG written is on the page, once
    assert all(i["ok"] for i in state["imgs"]), [i["alt"] for i in state["imgs"] if not i["ok"]]
    assert all(i["w"] > 50 and i["h"] > 10 for i in state["imgs"])
    # the console: no error or uncaught exception from the page itself
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []

    # and what a person sees: a screenshot of the top of the page is not blank
    shot = tmp_path / "page.png"
    r = _chromium(["--window-size=1000,1400", f"--screenshot={shot}", report.as_uri()], tmp_path / "profile2")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (1400, 1000)
    dark = np.mean(img[..., :3] < 0.5)
    assert 0.002 < dark < 0.5  # text and figures, not an empty or black page


def test_browser_binary_missing_is_a_skip_not_a_failure():
    # make test runs this file without a browser: the render test must be skipped there
    marks = {m.name for m in test_report_renders_in_chromium.pytestmark}
    assert {"browser", "skipif"} <= marks
