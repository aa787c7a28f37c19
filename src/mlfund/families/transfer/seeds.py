"""Transfer against from scratch over seeds: the per-seed table and its summary metrics.

One seed's comparison is a coin toss on a 180-image test set (one image is 0.56 points);
the claim "transfer beats scratch" is made on the mean over `transfer.compare_seeds` seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlfund.core.report import Paragraph, Table

BASELINE = "from_scratch"


@dataclass(frozen=True)
class SeedComparison:
    """Target test accuracy per strategy and seed; `BASELINE` is one of the strategies."""

    seeds: list[int]
    accuracy: dict[str, list[float]]  # strategy -> one test accuracy per seed

    def mean(self, strategy: str) -> float:
        return float(np.mean(self.accuracy[strategy]))

    def std(self, strategy: str) -> float:
        """Sample standard deviation over the seeds (0 for one seed)."""
        values = self.accuracy[strategy]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    @property
    def best(self) -> str:
        """The transferred strategy with the highest mean (the only one in the pipeline's
        table: the strategy validation picked at `transfer.seed`)."""
        transferred = [s for s in self.accuracy if s != BASELINE]
        return max(transferred, key=self.mean)

    def margins(self) -> list[float]:
        """Per seed: the best strategy's accuracy minus from scratch's."""
        best, scratch = self.accuracy[self.best], self.accuracy[BASELINE]
        return [b - s for b, s in zip(best, scratch, strict=True)]

    def metrics(self) -> dict[str, float]:
        """The claim as metrics: `margin_mean_accuracy` > 0 means transfer wins on the mean
        (names end in `accuracy`: higher is better, as the gate's accuracy rule reads)."""
        margins = self.margins()
        return {
            "best_mean_accuracy": self.mean(self.best),
            "scratch_mean_accuracy": self.mean(BASELINE),
            "margin_mean_accuracy": float(np.mean(margins)),
            "margin_min_accuracy": float(np.min(margins)),
        }

    def notes(self) -> list[Paragraph | Table]:
        """The report's per-seed table (strategy x seed, mean, std) and the margin."""
        margins = self.margins()
        header = ["strategy", *(f"seed {s}" for s in self.seeds), "mean", "std"]
        rows = [
            [name, *(f"{a:.3f}" for a in values), f"{self.mean(name):.3f}", f"{self.std(name):.3f}"]
            for name, values in self.accuracy.items()
        ]
        spread = float(np.std(margins, ddof=1)) if len(margins) > 1 else 0.0
        rows.append(
            [
                f"margin ({self.best} - {BASELINE})",
                *(f"{m:+.3f}" for m in margins),
                f"{np.mean(margins):+.3f}",
                f"{spread:.3f}",
            ]
        )
        wins = sum(m > 0 for m in margins)
        picked = (
            f"picked by validation at seed {self.seeds[0]}"
            if len(self.accuracy) == 2
            else "the best mean"
        )
        text = (
            f"Target test accuracy over {len(self.seeds)} seeds: each draws its own labelled "
            f"images, distortions, head initialisation and batches; the pretrained backbone "
            f"is the same. {self.best} ({picked}) beats {BASELINE} by "
            f"{np.mean(margins):+.3f} on the mean, on {wins} of {len(margins)} seeds."
        )
        return [Paragraph(text), Table(header, rows)]
