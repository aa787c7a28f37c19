"""Text data for the transformer family: a seeded synthetic sentiment corpus that a
bag-of-words model cannot solve, and two categories of 20 Newsgroups.

How the synthetic corpus is built
---------------------------------
Every text is one of two shapes (lower-case words, spaces between them):

- single clause (`SINGLE_SHARE` of the texts): "the movie was [not] [very] ADJ"
- contrast: "the movie was [not] [very] ADJ_A but [not] [very] ADJ_B"

A clause's polarity is its adjective's (positive or negative word list), flipped by a
"not" in front of it; intensifiers ("very", "really", ...) change nothing. The label is
the polarity of the last clause: after "but" the second clause decides.

The contrast texts are drawn so that their *bags of words* carry no label information:
the label y picks the second clause's polarity, the first clause gets the opposite one, and
each clause is negated with probability 1/2 independently. Then every bag (which
adjectives, how many "not") is equally likely under both labels: with no or two "not"s
the bag holds one positive and one negative adjective whatever y is; with one "not" both
adjectives share a polarity, and only *which clause* holds the "not" (word order) decides.
For single clauses the label is polarity XOR negation, which a linear model of word counts
gets at most 3/4 right. A TF-IDF + logistic-regression model therefore stays near
SINGLE_SHARE * 0.75 + (1 - SINGLE_SHARE) * 0.5 accuracy, while a model that reads order
can reach 1.
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd

from mlfund.core.errors import DataUnavailableError

POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "superb", "fine")
NEGATIVE = ("bad", "terrible", "awful", "boring", "dull", "poor", "horrible", "weak")
INTENSIFIERS = ("very", "really", "truly", "quite", "extremely")
SUBJECTS = ("movie", "film", "plot", "acting", "story", "ending", "soundtrack", "cast")
VERBS = ("was", "is", "seemed", "felt")
SINGLE_SHARE = 0.3  # share of single-clause texts; the rest are "A but B" contrasts
NEWSGROUPS_CATEGORIES = ("rec.autos", "sci.space")  # the two classes, label 0 and 1


class DatasetUnavailableError(DataUnavailableError):
    """A downloadable dataset is neither cached nor reachable."""


def _clause(rng: np.random.Generator, polarity: int, negated: bool) -> list[str]:
    """Words of one clause whose *effective* polarity is `polarity` (+1 or -1)."""
    adjective_polarity = -polarity if negated else polarity
    words = POSITIVE if adjective_polarity > 0 else NEGATIVE
    clause = ["not"] if negated else []
    if rng.random() < 0.5:
        clause.append(str(rng.choice(INTENSIFIERS)))
    clause.append(str(rng.choice(words)))
    return clause


def make_corpus(n_samples: int, seed: int) -> pd.DataFrame:
    """`n_samples` texts with columns `text` (str) and `label` (1 positive, 0 negative)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n_samples):
        label = int(rng.integers(2))
        polarity = 1 if label else -1
        words = ["the", str(rng.choice(SUBJECTS)), str(rng.choice(VERBS))]
        if rng.random() < SINGLE_SHARE:
            words += _clause(rng, polarity, bool(rng.integers(2)))
        else:
            # first clause opposite to the label, so the bag of words is balanced (see above)
            words += _clause(rng, -polarity, bool(rng.integers(2)))
            words += ["but", *_clause(rng, polarity, bool(rng.integers(2)))]
        texts.append(" ".join(words))
        labels.append(label)
    return pd.DataFrame({"text": texts, "label": np.asarray(labels, dtype=np.int64)})


def load_newsgroups(data_home: Path, *, download_if_missing: bool = True) -> pd.DataFrame:
    """Two 20 Newsgroups categories (train and test subsets together) as `text`, `label`.

    Headers, signatures and quotes are removed so the classifier reads the message body.
    Raises `DatasetUnavailableError` naming the dataset when it is not cached and cannot be
    downloaded (offline).
    """
    from sklearn.datasets import fetch_20newsgroups

    try:
        bunch = fetch_20newsgroups(
            data_home=str(data_home),
            subset="all",
            categories=list(NEWSGROUPS_CATEGORIES),
            remove=("headers", "footers", "quotes"),
            shuffle=False,
            download_if_missing=download_if_missing,
        )
    except (OSError, URLError) as error:  # URLError is an OSError; both named for clarity
        raise DatasetUnavailableError(
            f"20newsgroups: not cached in {data_home} and could not be downloaded ({error}); "
            "run once online or set transformer.dataset: synthetic"
        ) from error
    texts = [" ".join(str(t).split()) for t in bunch.data]
    frame = pd.DataFrame({"text": texts, "label": np.asarray(bunch.target, dtype=np.int64)})
    return frame[frame["text"].str.len() > 0].reset_index(drop=True)
