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

# Captions of the figures the stages write, by family and file stem.
CAPTIONS: dict[str, dict[str, str]] = {
    "linear": {
        "decision_boundary": "Logistic regression decision boundary over the test points.",
        "regression_fits": "Linear vs cubic regression on the test set, and their residuals.",
    },
    "regularization": {
        "model_selection": "Ridge alpha chosen on the validation split (log-log), 5-fold "
        "learning curve of the chosen model, and its test residuals.",
        "degrees": "Polynomial degree study: the test rows (x > 0.7) are an extrapolation.",
        "ridge_strengths": "Ridge strength on the degree-9 model: shrinkage tames extrapolation.",
        "coefficient_paths": "Ridge shrinks every coefficient; lasso sets most to exactly zero.",
    },
    "clustering": {"clusters": "True clusters and the three algorithms (DBSCAN noise circled)."},
    "embedding": {
        "projections": "Digits: two raw pixels, PCA, and t-SNE.",
        "explained_variance": "PCA explained variance per component and cumulated.",
    },
    "features": {
        "engineering": "Feature engineering on the salary table (training split).",
        "engineering_comparison": "The same learners with raw and engineered inputs.",
    },
    "numpy_nn": {
        "activations": "Activation functions (solid) and their derivatives (dashed).",
        "losses": "Loss functions and their gradients.",
        "xor": "The 2-3-1 network learning XOR: loss curve and decision surface.",
        "mlp": "The from-scratch MLP on the linearly separable and circles datasets.",
        "optimizers": "SGD, momentum (EMA), heavy ball and Adam on the curriculum's problem.",
        "batch_variants": "Batch vs mini-batch vs stochastic descent, with measured costs.",
        "geometry": "Learning rates on a quadratic valley: paths, convergence, divergence.",
        "vanishing": "Per-layer gradient norms of a 10-layer net: sigmoid vs ReLU vs skips.",
    },
    "mlp": {
        "comparison_classification_2d": "PyTorch MLP vs the from-scratch NumPy MLP: loss "
        "curves and decision boundaries (linearly separable set).",
        "comparison_circles": "The same comparison on circles.",
    },
    "cnn": {
        "components": "What a convolution sees: edge and blur filters and max pooling on a "
        "real digit.",
        "feature_maps": "First-layer feature maps of the trained CNN.",
        "prediction_grid": "Test digits with true and predicted labels.",
        "confusion_matrix": "Confusion matrix on the test rows.",
        "curves": "Loss and accuracy per epoch (the kept epoch marked).",
    },
    "transformer": {
        "attention": "Attention of the text transformer on test sentences: one head, and "
        "all heads averaged.",
    },
    "generative": {
        "vae_gan_samples": "VAE and GAN on two Gaussian clusters: data, reconstructions, "
        "samples, latent space and losses, with the measured sample quality.",
    },
    "transfer": {
        "strategies": "Transfer strategies on the few-label target task (digits 5-9) from a "
        "CNN pretrained on digits 0-4, against training from scratch.",
    },
    "rnn": {
        "curves_and_predictions": "RNN, LSTM and GRU: training curves and next-value "
        "predictions on test sequences.",
        "mse_comparison": "Validation and test MSE against the noise floor (0.01).",
    },
}


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


def format_value(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.4e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def family_blocks(
    family: str, metrics: dict[str, dict[str, float]], runs: dict[str, str], figures: list[Path]
) -> list[Block]:
    """A family's section: figures, then one metrics row per model with its run id."""
    blocks: list[Block] = [Heading(family)]
    captions = CAPTIONS.get(family, {})
    for path in sorted(
        figures, key=lambda p: list(captions).index(p.stem) if p.stem in captions else len(captions)
    ):
        blocks.append(Figure(path, captions.get(path.stem, path.stem.replace("_", " "))))
    names = sorted({m for values in metrics.values() for m in values})
    if len(names) > WIDE_TABLE:  # one row per metric instead of a mostly empty wide table
        rows = [
            [model, name, format_value(value), runs.get(model, "")]
            for model, values in sorted(metrics.items())
            for name, value in sorted(values.items())
        ]
        blocks.append(Table(["model", "metric", "value", "MLflow run"], rows))
        return blocks
    rows = [
        [
            model,
            *(format_value(values[m]) if m in values else "" for m in names),
            runs.get(model, ""),
        ]
        for model, values in sorted(metrics.items())
    ]
    blocks.append(Table(["model", *names, "MLflow run"], rows))
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
