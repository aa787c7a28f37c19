"""report.html as a reader sees it, in a headless Chromium (tests/browser.py): every image
decodes, every in-page link lands on an element, every relative link names a file that
exists, the console stays clean, and the contents take you to each family.

The report is the report stage's own, run in-process on the committed reports/metrics.json
and reports/calibration.json, with the training stage's outputs (figures, notes, run ids)
made up in a temporary folder: a fresh clone has no reports/train or reports/figures.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import matplotlib.pyplot as plt
import pytest
import yaml

from mlfund.core.calibration import params_digest
from mlfund.core.registry import FAMILY_LIST
from tests.browser import Browser, Page

ROOT = Path(__file__).resolve().parents[1]

# What is wrong on the page, by kind; each list empty on a good page.
PROBLEMS_JS = """(async () => {
  const images = [...document.images];
  await Promise.allSettled(images.map(i => i.decode()));
  const relative = v => v && !v.startsWith('#') && !/^[a-z][a-z0-9+.-]*:/i.test(v);
  return {
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0))
      .map(i => i.alt || i.getAttribute('src').slice(0, 60)),
    dangling_anchors: [...document.querySelectorAll('a[href^="#"]')]
      .map(a => a.getAttribute('href'))
      .filter(h => h !== '#' && !document.getElementById(decodeURIComponent(h.slice(1)))),
    relative_links: [...document.querySelectorAll('[href], [src]')]
      .map(e => e.getAttribute('href') ?? e.getAttribute('src')).filter(relative)
      .map(v => new URL(v, document.baseURI).href),
  };
})()"""


def problems(page: Page) -> dict[str, list[str]]:
    """Broken images, anchors without a target, relative links to missing files, console
    errors and failed requests of an opened page."""
    found = page.evaluate(PROBLEMS_JS)
    links = found.pop("relative_links")
    found["missing_files"] = [
        url
        for url in links
        if urlparse(url).scheme == "file" and not Path(unquote(urlparse(url).path)).exists()
    ]
    found["console_and_network"] = page.errors
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(window=(1280, 900)) as opened:
        yield opened


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report stage's page over the committed metrics (as the training stages' files),
    with two figures, a note and a run id per model made up for every family."""
    import stages.report as stage

    reports = tmp_path_factory.mktemp("report") / "reports"
    reports.mkdir()
    for name in ("metrics.json", "calibration.json"):
        shutil.copy(ROOT / "reports" / name, reports / name)
    metrics = json.loads((reports / "metrics.json").read_text())
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2], [1, 0.5, 0.2])
    png = reports / "curve.png"
    figure.savefig(png, dpi=40)
    plt.close(figure)
    for family in FAMILY_LIST:
        folder = reports / "figures" / family.name
        folder.mkdir(parents=True)
        for stem in ("curves", "extra"):
            shutil.copy(png, folder / f"{stem}.png")
        trained = {
            "metrics": {family.name: metrics.get(family.name, {})},
            "captions": [["curves", f"{family.name}: loss per epoch."]],
            "notes": [{"text": f"A note on {family.name} & <its> models."}],
            "runs": {model: f"run-{model}" for model in metrics.get(family.name, {})},
        }
        (reports / "train").mkdir(exist_ok=True)
        (reports / "train" / f"{family.name}.json").write_text(json.dumps(trained))
        (reports / "eval" / family.name).mkdir(parents=True)
        (reports / "eval" / family.name / "test_metrics.json").write_text("{}")
    patch = pytest.MonkeyPatch()
    patch.setattr(stage, "REPORTS", reports)
    try:
        stage.main(None)
    finally:
        patch.undo()
    return reports / "report.html"


def test_the_report_page_has_no_broken_image_link_or_console_error(
    browser: Browser, report_html: Path
) -> None:
    page = browser.open(report_html.as_uri())
    assert problems(page) == {
        "broken_images": [],
        "dangling_anchors": [],
        "missing_files": [],
        "console_and_network": [],
    }
    # the checks saw the whole page: two figures and a contents entry per family
    assert page.evaluate("document.images.length") == 2 * len(FAMILY_LIST)
    links = page.evaluate("[...document.querySelectorAll('nav a')].map(a => a.hash)")
    assert links == [f"#{family.name}" for family in FAMILY_LIST]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert f"sha256 {params_digest(raw, sorted(raw))[:12]}" in page.text()
    # the page never scrolls sideways: a wide metrics table scrolls in its own box
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width


def test_the_contents_take_you_to_each_family(browser: Browser, report_html: Path) -> None:
    page = browser.open(report_html.as_uri())
    for family in (FAMILY_LIST[-1], FAMILY_LIST[len(FAMILY_LIST) // 2]):
        page.click(selector=f'nav a[href="#{family.name}"]')
        # the section's heading is at the top of the window, its headline under it
        top = page.wait_for(
            f"Math.abs(document.getElementById('{family.name}').getBoundingClientRect().top) < 2"
        )
        assert top
        assert page.evaluate("location.hash") == f"#{family.name}"
        headline = page.evaluate(
            f"document.querySelector('#{family.name} ~ .headline .metric').innerText"
        )
        assert headline.startswith(family.primary)
        page.click(selector=f"#{family.name} a.up")
        page.wait_for(
            "Math.abs(document.getElementById('contents').getBoundingClientRect().top) < 2"
        )


def test_the_checks_catch_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    # each defect the report test must notice, once: a corrupt embedded PNG, an image file
    # that is not there, a link to a missing section, a script error and a console.error
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!doctype html><html><body><h2 id='here'>here</h2>"
        "<img alt='corrupt' src='data:image/png;base64,iVBORw0KGgoAAAA='>"
        "<img alt='missing' src='figures/none.png'>"
        "<a href='#here'>fine</a><a href='#gone'>dangling</a><a href='notes.md'>notes</a>"
        "<script>console.error('bad', 1); null.x;</script></body></html>"
    )
    found = problems(browser.open(page_file.as_uri()))
    assert found["broken_images"] == ["corrupt", "missing"]
    assert found["dangling_anchors"] == ["#gone"]
    assert found["missing_files"] == [
        (tmp_path / "figures/none.png").as_uri(),
        (tmp_path / "notes.md").as_uri(),
    ]
    console = found["console_and_network"]
    assert "console.error: bad 1" in console
    assert any(line.startswith("uncaught: TypeError") for line in console)
    assert any("ERR_FILE_NOT_FOUND" in line and "none.png" in line for line in console)
