"""An attention text classifier against TF-IDF + logistic regression.

The curriculum's attention classifier (`model.py`). The default corpus (`corpus.make_corpus`)
has labels that depend on word order (negation, "but" clauses) and bags of words that
carry no label information, so the baseline stays near chance while the transformer reads
the order. Both models use the same stratified 60/20/20 split; the tokenizer's vocabulary
comes from the training texts only. The model takes token ids, not a table row, so it has
no manifest card: its test metrics are train-side metrics here. It is logged to MLflow
(pt2) and saved as a state_dict; its config and vocabulary go to the extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlfund.core.config import SplitSpec
from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, epoch_tables
from mlfund.core.splitting import three_way_split
from mlfund.families.transformer.corpus import load_newsgroups, make_corpus
from mlfund.families.transformer.figures import CAPTIONS, attention_figure
from mlfund.families.transformer.model import WordTokenizer, accuracy, train_text_classifier

if TYPE_CHECKING:
    from mlfund.core.config import TransformerParams
    from mlfund.deep.device import Compute

BUILDER = "mlfund.families.transformer.model:build_text_transformer"
SPLIT_SIZES = {"test_size": 0.2, "val_size": 0.2}  # 60/20/20, as every family's split
SHOWN_SENTENCES = 3  # test sentences in the attention figure


def load_texts(p: TransformerParams, inputs: Inputs) -> tuple[str, pd.DataFrame]:
    """The dataset's name and its `text`, `label` table."""
    if p.dataset == "20newsgroups":
        return "20newsgroups", load_newsgroups(inputs.folder("20newsgroups"))
    return "synthetic_text", make_corpus(p.n_samples, p.seed)


def run(p: TransformerParams, inputs: Inputs, compute: Compute) -> FamilyResult:
    """The transformer (one run, its model and attention figure), then the TF-IDF baseline."""
    dataset, corpus = load_texts(p, inputs)
    labels = corpus["label"].to_numpy()
    spec = SplitSpec(**SPLIT_SIZES, shuffle=True, stratify=True, seed=p.seed)
    rows = dict(
        zip(("train", "val", "test"), three_way_split(len(corpus), spec, labels), strict=True)
    )
    texts = {name: corpus["text"].to_numpy()[index] for name, index in rows.items()}
    targets = {name: labels[index] for name, index in rows.items()}
    tokenizer = WordTokenizer.fit(texts["train"], p.min_word_count)
    ids = {name: tokenizer.encode(t, p.max_length) for name, t in texts.items()}
    y = {name: torch.from_numpy(t) for name, t in targets.items()}
    n_classes = int(labels.max()) + 1
    config = {
        "vocab_size": len(tokenizer),
        "d_model": p.d_model,
        "n_heads": p.n_heads,
        "n_layers": p.n_layers,
        "d_ff": p.d_ff,
        "max_length": p.max_length,
        "n_classes": n_classes,
        "dropout": p.dropout,
    }
    with diverging("transformer", "transformer.learning_rate", p.learning_rate):
        fitted = train_text_classifier(
            config, p, (ids["train"], y["train"]), (ids["val"], y["val"]), compute
        )
    model, history = fitted.model, fitted.history
    metrics = {
        "test_accuracy": accuracy(model, ids["test"], y["test"], compute),
        "val_accuracy": accuracy(model, ids["val"], y["val"], compute),
        "val_loss": history.val_loss[history.best_epoch],
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.train_loss),
        "train_seconds": fitted.seconds,
        "vocab_size": len(tokenizer),
    }
    shown = ids["test"][:SHOWN_SENTENCES]
    figure = attention_figure(model, tokenizer, shown, targets["test"][:SHOWN_SENTENCES].tolist())
    columns = [f"token_{i}" for i in range(p.max_length)]
    saved = SavedModel(
        model,
        "classification",
        pd.DataFrame(ids["train"].numpy(), columns=columns),
        "label",
        builder=BUILDER,
        config=config,
        classes=list(range(n_classes)),
        example=ids["test"].numpy(),  # ids as float32 in MLflow; forward casts them back
        scored=False,  # it reads texts, not a split table: scored here, not by evaluate
    )
    curves = {
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "val_metric": history.val_metric,  # validation accuracy
    }
    transformer = ModelRun(
        "transformer",
        dataset,
        p.model_dump(),
        metrics,
        saved,
        curves,
        figures=["attention"],
        tags=compute.describe(),
    )
    baseline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    baseline.fit(texts["train"], targets["train"])
    tfidf = ModelRun(
        "tfidf_logistic",
        dataset,
        {"seed": p.seed},
        {
            f"{split}_accuracy": float(np.mean(baseline.predict(texts[split]) == targets[split]))
            for split in ("val", "test")
        },
    )
    return FamilyResult(
        [transformer, tfidf],
        figures={"attention": figure},
        plots=epoch_tables([transformer]),
        captions=CAPTIONS,
        extras={"model": {"config": config, "vocabulary": tokenizer.vocabulary}},
    )
