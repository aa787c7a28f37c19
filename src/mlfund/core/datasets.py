"""Every classical dataset of the curriculum, made from parameters.

Each maker is pure: parameters in, a DataFrame out. Tabular datasets use the columns
`x0 .. x{d-1}` for features and `y` for the target, so every family reads them the same way.
scikit-learn is imported inside the makers, where it is needed (it costs a second or two to
import); the tables' sizes from params alone are in `mlfund.core.tables`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from mlfund.core.config import (
    Blobs,
    Circles,
    Classification2D,
    DataParams,
    NoisySine,
    Regression,
    Salary,
    SineSequences,
)
from mlfund.core.tables import EDUCATION_LEVELS

TARGET = "y"


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The `x<i>` feature columns of a tabular dataset, in index order."""
    names = [c for c in frame.columns if c.startswith("x") and c[1:].isdigit()]
    return sorted(names, key=lambda c: int(c[1:]))


def _tabular(features: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(features.shape[1])])
    frame[TARGET] = target
    return frame


def make_classification_2d(p: Classification2D) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=p.n_samples,
        n_features=p.n_features,
        n_informative=p.n_informative,
        n_redundant=p.n_redundant,
        n_clusters_per_class=p.n_clusters_per_class,
        random_state=p.seed,
    )
    return _tabular(features, labels.astype("int64"))


def make_regression_table(p: Regression) -> pd.DataFrame:
    from sklearn.datasets import make_regression

    extra = {} if p.n_informative is None else {"n_informative": p.n_informative}
    features, target = make_regression(
        n_samples=p.n_samples, n_features=p.n_features, noise=p.noise, random_state=p.seed, **extra
    )
    return _tabular(features, target)


def make_blob_clusters(p: Blobs) -> pd.DataFrame:
    from sklearn.datasets import make_blobs

    features, labels = make_blobs(
        n_samples=p.n_samples, centers=p.centers, cluster_std=p.cluster_std, random_state=p.seed
    )
    return _tabular(features, labels.astype("int64"))


def make_circle_rings(p: Circles) -> pd.DataFrame:
    from sklearn.datasets import make_circles

    features, labels = make_circles(
        n_samples=p.n_samples, factor=p.factor, noise=p.noise, random_state=p.seed
    )
    return _tabular(features, labels.astype("int64"))


def load_digit_images() -> pd.DataFrame:
    """scikit-learn's 8x8 digits (1797 images, pixel values 0..16); ships offline."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _tabular(digits.data, digits.target.astype("int64"))


def make_noisy_sine(p: NoisySine) -> pd.DataFrame:
    """y = slope*x + sin(frequency*x) + N(0, noise_std) on an even grid of x in [0, 1].

    RandomState(seed) draws exactly what the curriculum's `np.random.seed(42)` drew,
    without touching numpy's global generator.
    """
    x = np.linspace(0.0, 1.0, p.n_samples)
    noise = np.random.RandomState(p.seed).normal(0.0, p.noise_std, p.n_samples)
    return _tabular(x.reshape(-1, 1), p.slope * x + np.sin(p.frequency * x) + noise)


def make_sine_sequences(p: SineSequences) -> pd.DataFrame:
    """Windows of noisy sine waves: columns x0..x{L-1} are the inputs, y the next value.

    Each row is its own wave, amplitude * sin(frequency * t + phase) + N(0, noise_std) on
    t in [0, 4 pi], with frequency and amplitude ~ U(0.5, 2) and phase ~ U(0, 2 pi), as the
    curriculum draws them, but from one seeded generator. The target carries the noise
    too, so no model can reach a test MSE below noise_std**2.
    """
    rng = np.random.default_rng(p.seed)
    n, length = p.n_sequences, p.seq_length
    t = np.linspace(0.0, 4 * np.pi, length + 1)  # (L + 1,)
    frequency = rng.uniform(0.5, 2.0, (n, 1))
    amplitude = rng.uniform(0.5, 2.0, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    signal = amplitude * np.sin(frequency * t + phase) + rng.normal(0, p.noise_std, (n, length + 1))
    return _tabular(signal[:, :-1], signal[:, -1])


def make_salary_table(p: Salary) -> pd.DataFrame:
    """The curriculum's synthetic salary table, drawn in its order from RandomState(seed).

    Income is N(50000, 20000), which is negative for about 0.6% of rows; the curriculum
    then takes log1p(income) and gets NaN. An income can't be negative, so incomes are
    clipped at `income_floor` before the salary is computed from them: the table stays
    self-consistent, and the validate stage enforces `income >= 0`.
    """
    rng = np.random.RandomState(p.seed)
    n = p.n_samples
    age = rng.randint(18, 80, n)
    income = np.maximum(rng.normal(50_000, 20_000, n), p.income_floor)
    education = rng.choice(list(EDUCATION_LEVELS), n)
    experience_years = rng.randint(0, 40, n)
    date_joined = pd.date_range(pd.Timestamp(p.start_date), periods=n, freq="D")
    salary = income * 0.5 + age * 1000 + experience_years * 2000 + rng.normal(0, 5000, n)
    return pd.DataFrame(
        {
            "age": age.astype("int64"),
            "income": income,
            "education": pd.Series(education, dtype="string"),
            "experience_years": experience_years.astype("int64"),
            "date_joined": date_joined.as_unit("ns"),
            "salary": salary,
        }
    )


def makers(p: DataParams) -> dict[str, Callable[[], pd.DataFrame]]:
    """Every classical dataset by name, as a call that makes it: the generate stage makes
    and writes them one at a time, so only one table is in memory at once."""
    return {
        "classification_2d": partial(make_classification_2d, p.classification_2d),
        "regression_1d": partial(make_regression_table, p.regression_1d),
        "regression_10d": partial(make_regression_table, p.regression_10d),
        "regression_sparse": partial(make_regression_table, p.regression_sparse),
        "blobs": partial(make_blob_clusters, p.blobs),
        "circles": partial(make_circle_rings, p.circles),
        "digits": load_digit_images,
        "noisy_sine": partial(make_noisy_sine, p.noisy_sine),
        "sine_sequences": partial(make_sine_sequences, p.sine_sequences),
        "salary": partial(make_salary_table, p.salary),
    }


def make_all(p: DataParams) -> dict[str, pd.DataFrame]:
    """Every classical dataset by name, made."""
    return {name: make() for name, make in makers(p).items()}
