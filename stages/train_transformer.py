"""Stage train_transformer: an attention text classifier against TF-IDF + logistic regression.

The default corpus (mlfund.deep.text_corpus.make_corpus) has labels that depend on word
order (negation, "but" clauses) and bags of words that carry no label information, so the
baseline stays near chance while the transformer reads the order. Both models use the same
stratified 60/20/20 split; the tokenizer's vocabulary comes from the training texts only.
The model takes token ids, not a table row, so there is no manifest card: its test metrics
are train-side metrics here, and the model is logged to MLflow (pt2) and saved as a
state_dict with its vocabulary.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlfund.config import Params, SplitSpec
from mlfund.deep.text_corpus import load_newsgroups, make_corpus
from mlfund.deep.training import NonFiniteLossError, save_atomic
from mlfund.deep.transformer import WordTokenizer, accuracy, train_text_classifier
from mlfund.deep.transformer_figures import attention_figure
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from mlfund.splitting import three_way_split
from stages.common import RAW, FamilyOutputs, family_compute, run_stage, tracker

FAMILY = "transformer"
SPLIT_SIZES = {"test_size": 0.2, "val_size": 0.2}  # 60/20/20, as every family's split
SHOWN_SENTENCES = 3  # test sentences in the attention figure


def load_texts(params: Params) -> tuple[str, pd.DataFrame]:
    p = params.transformer
    if p.dataset == "20newsgroups":
        return "20newsgroups", load_newsgroups(RAW / "20newsgroups")
    return "synthetic_text", make_corpus(p.n_samples, p.seed)


def main(params: Params) -> None:
    p = params.transformer
    compute = family_compute(params, FAMILY)
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    dataset, corpus = load_texts(params)
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
    config = {
        "vocab_size": len(tokenizer),
        "d_model": p.d_model,
        "n_heads": p.n_heads,
        "n_layers": p.n_layers,
        "d_ff": p.d_ff,
        "max_length": p.max_length,
        "n_classes": int(labels.max()) + 1,
        "dropout": p.dropout,
    }
    metrics: dict[str, dict[str, float]] = {}
    with track.run("transformer", dataset, p.model_dump()) as run:
        run.set_tags(compute.describe())
        try:
            fitted = train_text_classifier(
                config,
                (ids["train"], y["train"]),
                (ids["val"], y["val"]),
                learning_rate=p.learning_rate,
                batch_size=p.batch_size,
                epochs=p.epochs,
                patience=p.patience,
                seed=p.seed,
                compute=compute,
                on_epoch=lambda epoch, values: run.metrics(values, step=epoch),
            )
        except NonFiniteLossError as error:
            raise SystemExit(
                f"error: {FAMILY}: {error} (transformer.learning_rate is {p.learning_rate}); "
                "no model was written"
            ) from None
        model, history = fitted.model, fitted.history
        metrics["transformer"] = {
            "test_accuracy": accuracy(model, ids["test"], y["test"], compute),
            "val_accuracy": accuracy(model, ids["val"], y["val"], compute),
            "val_loss": history.val_loss[history.best_epoch],
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.train_loss),
            "train_seconds": fitted.seconds,
            "vocab_size": len(tokenizer),
        }
        run.metrics(metrics["transformer"])
        model = model.cpu().eval()
        run.torch_model(model, ids["test"].numpy())  # ids as float32; forward casts them back
        save_atomic(model.state_dict(), out.models / "transformer.pt")
        (out.models / "transformer.json").write_text(
            json.dumps({"config": config, "vocabulary": tokenizer.vocabulary}, indent=1) + "\n"
        )
        shown = ids["test"][:SHOWN_SENTENCES]
        figure = attention_figure(
            model, tokenizer, shown, targets["test"][:SHOWN_SENTENCES].tolist()
        )
        run.artifact(save_figure(figure, out.figure("attention")))
    with track.run("tfidf_logistic", dataset, {"seed": p.seed}) as run:
        baseline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
        baseline.fit(texts["train"], targets["train"])
        metrics["tfidf_logistic"] = {
            f"{split}_accuracy": float(np.mean(baseline.predict(texts[split]) == targets[split]))
            for split in ("val", "test")
        }
        run.metrics(metrics["tfidf_logistic"])
    write_manifest(out.models, [])
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
