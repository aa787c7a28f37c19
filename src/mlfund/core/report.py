"""The learner's report: every figure, the metrics table and the MLflow run ids.

The report is a list of blocks rendered twice: Markdown (figures linked by relative
path) and a self-contained HTML page (figures embedded as base64), so both always say
the same thing. The page opens with the code and params it came from and a table of
contents; each family's section starts with its headline metric per model.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlfund.core.registry import Family

WIDE_TABLE = 10  # metric columns above which a family's table is written long


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""  # an element id, for links to `#anchor` (Markdown viewers derive it)


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


@dataclass(frozen=True)
class RunInfo:
    """Which code and params the numbers come from: the page's header."""

    commit: str  # git HEAD when the report stage ran, as the MLflow runs' git_commit tag
    params_sha256: str  # calibration.params_digest of every key of params.yaml
    experiment: str = ""  # the DVC experiment's name under `dvc exp run`


@dataclass(frozen=True)
class Headline:
    """A family's primary metric (the registry's, as `make compare` ranks by) per model,
    best first: the numbers at the top of its section."""

    metric: str
    direction: Literal["max", "min"]
    values: list[tuple[str, str]]  # (model, value as shown)

    @property
    def better(self) -> str:
        return "higher is better" if self.direction == "max" else "lower is better"


@dataclass(frozen=True)
class Contents:
    """The table of contents: per family its anchor, one line on it and its best number."""

    entries: list[tuple[str, str, str]]  # (anchor, description, "metric: value (model)")


Block = Heading | Paragraph | Table | Figure | RunInfo | Headline | Contents


@dataclass(frozen=True)
class SeedSpread:
    """A family's headline metric over the seeds of `make calibrate`: mean and std per model."""

    metric: str
    seeds: str  # which seeds, e.g. "cnn.seed = 42..46"
    k: int
    by_model: dict[str, tuple[float, float]]  # model -> (mean, sample std)

    def cell(self, model: str, text: str) -> str:
        """`0.9972 (0.9961 ± 0.0015)`: the value, then the mean ± std over the seeds."""
        if model not in self.by_model:
            return text
        mean, std = self.by_model[model]
        return f"{text} ({format_value(mean)} ± {std:.2g})"  # two digits of a std are plenty

    def note(self) -> Paragraph:
        return Paragraph(
            f"In brackets after {self.metric}: mean ± std over {self.k} seeds "
            f"({self.seeds}), measured by `make calibrate` (reports/calibration.json)."
        )


def format_value(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.4e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def headline(
    family: Family, metrics: dict[str, dict[str, float]], spread: SeedSpread | None = None
) -> Headline | None:
    """The family's primary metric for each model that has one, best first (a NaN last),
    then the family's references (labelled so); None when no model has it."""
    scored = [
        (m, values[family.primary]) for m, values in metrics.items() if family.primary in values
    ]
    if not scored:
        return None
    sign = -1 if family.direction == "max" else 1
    scored.sort(
        key=lambda mv: (
            mv[0] in family.references,  # generative's real-vs-real floor is no model
            not math.isfinite(mv[1]),
            sign * mv[1] if math.isfinite(mv[1]) else 0,
        )
    )
    shown = [
        (
            f"{m} (reference)" if m in family.references else m,
            spread.cell(m, format_value(v)) if spread else format_value(v),
        )
        for m, v in scored
    ]
    return Headline(family.primary, family.direction, shown)


def contents(sections: list[list[Block]]) -> Contents:
    """The table of contents of these sections (as `family_blocks` makes them), read off
    the sections themselves: the anchored heading, the line under it, the best headline."""
    entries = []
    for section in sections:
        heading = next(b for b in section if isinstance(b, Heading) and b.anchor)
        line = next((b.text for b in section if isinstance(b, Paragraph)), "")
        top = next((b for b in section if isinstance(b, Headline)), None)
        best = f"{top.metric}: {top.values[0][1]} ({top.values[0][0]})" if top else ""
        entries.append((heading.anchor, line, best))
    return Contents(entries)


def family_blocks(
    family: Family,
    metrics: dict[str, dict[str, float]],
    runs: dict[str, str],
    figures: list[Path],
    captions: dict[str, str],
    notes: list[Paragraph | Table],
    spread: SeedSpread | None = None,
) -> list[Block]:
    """A family's section: its headline, notes, figures in caption order, then one metrics
    row per model with its run id; `spread` adds the seed spread to its primary metric."""
    top = headline(family, metrics, spread)
    blocks: list[Block] = [
        Heading(family.name, anchor=family.name),
        Paragraph(family.description),
        *([top] if top else []),
        *notes,
    ]
    order = list(captions)
    for path in sorted(
        figures, key=lambda p: order.index(p.stem) if p.stem in order else len(order)
    ):
        blocks.append(Figure(path, captions.get(path.stem, path.stem.replace("_", " "))))
    names = sorted({m for values in metrics.values() for m in values})

    def cell(model: str, name: str, value: float) -> str:
        text = format_value(value)
        return spread.cell(model, text) if spread and name == spread.metric else text

    if len(names) > WIDE_TABLE:  # one row per metric instead of a mostly empty wide table
        rows = [
            [model, name, cell(model, name, value), runs.get(model, "")]
            for model, values in sorted(metrics.items())
            for name, value in sorted(values.items())
        ]
        blocks.append(Table(["model", "metric", "value", "MLflow run"], rows))
    else:
        rows = [
            [
                model,
                *(cell(model, m, values[m]) if m in values else "" for m in names),
                runs.get(model, ""),
            ]
            for model, values in sorted(metrics.items())
        ]
        blocks.append(Table(["model", *names, "MLflow run"], rows))
    if spread and spread.by_model:
        blocks.append(spread.note())
    return blocks


@dataclass(frozen=True)
class FamilyPage:
    """What a family's training stage left for its section (reports/train/<family>.json
    and reports/figures/<family>/), beside its merged metrics."""

    family: Family
    runs: dict[str, str]  # model -> MLflow run id
    figures: list[Path]
    captions: dict[str, str]
    notes: list[Paragraph | Table]
    spread: SeedSpread | None  # None unless calibrated for the current params


INTRO = (
    "Every figure and number below is regenerated by `dvc repro` from params.yaml. "
    "Metric names match reports/metrics.json and the MLflow runs (one experiment per family)."
)


def document(run: RunInfo, metrics: dict, pages: list[FamilyPage], stale: list[str]) -> list[Block]:
    """The whole report: where it came from, which families lack a fresh seed spread
    (`stale`), the contents, then one section per family."""
    blocks: list[Block] = [run, Paragraph(INTRO)]
    if stale:
        blocks.append(
            Paragraph(
                f"No seed spread for {', '.join(stale)}: their params changed since "
                f'`make calibrate` measured it (`make calibrate FAMILIES="{" ".join(stale)}"`).'
            )
        )
    sections = [
        family_blocks(
            page.family,
            metrics.get(page.family.name, {}),
            page.runs,
            page.figures,
            page.captions,
            page.notes,
            page.spread,
        )
        for page in pages
    ]
    return [*blocks, contents(sections), *(block for section in sections for block in section)]


def _run_line(info: RunInfo) -> tuple[str, str, str]:
    """(commit, params digest, experiment) as shown: short ids, full ones on hover."""
    commit = info.commit[:12] if len(info.commit) == 40 else info.commit
    return commit, info.params_sha256[:12], info.experiment


def to_markdown(title: str, blocks: list[Block], relative_to: Path) -> str:
    lines = [f"# {title}", ""]
    for block in blocks:
        match block:
            case Heading(text, level):
                lines += [f"{'#' * level} {text}", ""]
            case Paragraph(text):
                lines += [text, ""]
            case Table(header, rows):
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(row) + " |" for row in rows]
                lines.append("")
            case Figure(path, caption):
                lines += [
                    f"![{caption}]({path.relative_to(relative_to).as_posix()})",
                    "",
                    f"*{caption}*",
                    "",
                ]
            case RunInfo():
                commit, digest, experiment = _run_line(block)
                exp = f" · DVC experiment `{experiment}`" if experiment else ""
                lines += [f"Code: git `{commit}` · params.yaml: sha256 `{digest}`{exp}", ""]
            case Headline(metric, _, values):
                shown = " · ".join(  # the best in bold, as on the page
                    f"{m} **{v}**" if i == 0 else f"{m} {v}" for i, (m, v) in enumerate(values)
                )
                lines += [f"**{metric}** ({block.better}): {shown}", ""]
            case Contents(entries):
                lines += ["## Contents", "", "| family | what | headline |", "|---|---|---|"]
                lines += [f"| [{a}](#{a}) | {what} | {top} |" for a, what, top in entries]
                lines.append("")
    return "\n".join(lines)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
line-height:1.4}table{border-collapse:collapse;font-size:.85em;margin:1em 0}
.table{overflow-x:auto}td,th{border:1px
solid #ccc;padding:.25em .5em;text-align:right}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555;font-style:italic}
code{background:#f0f2f4;padding:0 .3em;border-radius:3px}.run{color:#444}
nav td,nav th{text-align:left!important}nav td:last-child{font-variant-numeric:tabular-nums}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2.5em}
h2 .up{float:right;font-size:.55em;font-weight:normal;padding-top:.6em}
.headline{display:flex;flex-wrap:wrap;gap:.4em 2em;align-items:baseline;background:#f4f7fa;
border-left:4px solid #3b6ea5;padding:.6em 1em;margin:.8em 0 1.2em}
.headline .metric{flex-basis:100%;font-weight:600}.headline .metric span{font-weight:normal;
color:#666;font-size:.85em;margin-left:.5em}.stat .model{display:block;color:#555;
font-size:.8em}.stat .value{font-size:1.3em;font-variant-numeric:tabular-nums}
.stat.best .value{font-weight:700}"""


def _html_block(block: Block) -> str:
    e = html.escape
    match block:
        case Heading(text, level, anchor) if anchor:
            up = '<a class="up" href="#contents">↑ contents</a>'
            return f'<h{level} id="{e(anchor)}">{e(text)} {up}</h{level}>'
        case Heading(text, level):
            return f"<h{level}>{e(text)}</h{level}>"
        case Paragraph(text):  # `code` as in Markdown
            return "<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", e(text)) + "</p>"
        case Table(header, rows):
            head = "".join(f"<th>{e(h)}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows
            )
            # in a scrolling box: a table wider than the page (metrics and MLflow run ids)
            # scrolls by itself instead of the whole page
            return f'<div class="table"><table><tr>{head}</tr>{cells}</table></div>'
        case Figure(path, caption):
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return (
                f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        case RunInfo(commit_id, params_sha256):
            commit, digest, experiment = _run_line(block)
            exp = f" · DVC experiment <code>{e(experiment)}</code>" if experiment else ""
            return (
                f'<p class="run">Code: git <code title="{e(commit_id)}">{e(commit)}</code> '
                f"(HEAD when the report stage ran) · params.yaml: sha256 "
                f'<code title="{e(params_sha256)}">{e(digest)}</code> (of its values)'
                f"{exp}</p>"
            )
        case Headline(metric, _, values):
            stats = "".join(
                f'<div class="stat{" best" if i == 0 else ""}"><span class="model">{e(m)}'
                f'</span><span class="value">{e(v)}</span></div>'
                for i, (m, v) in enumerate(values)
            )
            return (
                f'<div class="headline"><div class="metric">{e(metric)}'
                f"<span>{e(block.better)}</span></div>{stats}</div>"
            )
        case Contents(entries):
            rows = "".join(
                f'<tr><td><a href="#{e(a)}">{e(a)}</a></td><td>{e(what)}</td><td>{e(top)}</td></tr>'
                for a, what, top in entries
            )
            head = "<tr><th>family</th><th>what</th><th>headline</th></tr>"
            return f'<nav id="contents"><h2>Contents</h2><table>{head}{rows}</table></nav>'
    raise TypeError(f"not a report block: {block!r}")


def to_html(title: str, blocks: list[Block]) -> str:
    """One file with every figure embedded, so it can be mailed or archived alone."""
    body = f"<h1>{html.escape(title)}</h1>" + "".join(_html_block(b) for b in blocks)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def note_from_json(entry: dict) -> Paragraph | Table:
    """A note as the training stage stored it (`dataclasses.asdict` of a Paragraph or Table)."""
    return Table(entry["header"], entry["rows"]) if "header" in entry else Paragraph(entry["text"])
