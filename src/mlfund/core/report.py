"""The learner's report: every figure, the metrics table and the MLflow run ids.

The report is a list of blocks rendered twice: Markdown (figures linked by relative
path) and a self-contained HTML page (figures embedded as base64), so both always say
the same thing.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

WIDE_TABLE = 10  # metric columns above which a family's table is written long


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


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


Block = Heading | Paragraph | Table | Figure


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


def family_blocks(
    family: str,
    metrics: dict[str, dict[str, float]],
    runs: dict[str, str],
    figures: list[Path],
    captions: dict[str, str],
    notes: list[Paragraph | Table],
    spread: SeedSpread | None = None,
) -> list[Block]:
    """A family's section: its notes, figures in caption order, then one metrics row per
    model with its run id; `spread` adds the seed spread to its headline metric's cells."""
    blocks: list[Block] = [Heading(family), *notes]
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
    return "\n".join(lines)


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:right}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555;font-style:italic}"""


def to_html(title: str, blocks: list[Block]) -> str:
    """One file with every figure embedded, so it can be mailed or archived alone."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for block in blocks:
        match block:
            case Heading(text, level):
                body.append(f"<h{level}>{html.escape(text)}</h{level}>")
            case Paragraph(text):
                body.append(f"<p>{html.escape(text)}</p>")
            case Table(header, rows):
                head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                cells = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in rows
                )
                body.append(f"<table><tr>{head}</tr>{cells}</table>")
            case Figure(path, caption):
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(caption)}" '
                    f'src="data:image/png;base64,{data}"><figcaption>'
                    f"{html.escape(caption)}</figcaption></figure>"
                )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def note_from_json(entry: dict) -> Paragraph | Table:
    """A note as the training stage stored it (`dataclasses.asdict` of a Paragraph or Table)."""
    return Table(entry["header"], entry["rows"]) if "header" in entry else Paragraph(entry["text"])
