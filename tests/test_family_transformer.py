"""Transformer family: attention against torch's, padding invariance, the tokenizer, the
order-dependent corpus, the offline error, and `run` on a small seeded corpus: the
transformer reads word order and beats TF-IDF + logistic regression by a wide margin."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.errors import DataUnavailableError, NonFiniteLossError
from mlfund.deep.device import Compute
from mlfund.deep.predictor import build
from mlfund.families.transformer.corpus import DatasetUnavailableError, load_newsgroups, make_corpus
from mlfund.families.transformer.figures import attention_figure
from mlfund.families.transformer.model import (
    PAD_ID,
    UNK_ID,
    MultiHeadAttention,
    TextClassificationTransformer,
    WordTokenizer,
    accuracy,
)
from tests.conftest import FrameInputs

CPU = Compute(torch.device("cpu"), "fp32")
FAMILY = registry.get("transformer")
# A small seeded corpus and model (~4 s). Over seeds 0-3, 7 and 42 the transformer scored
# 0.97-1.0 on the test texts and TF-IDF 0.47-0.54, a margin of at least 0.44.
SMALL = {"n_samples": 2000, "max_length": 16, "d_model": 32, "n_heads": 4, "n_layers": 2}
SMALL |= {"d_ff": 64, "learning_rate": 3e-3, "batch_size": 64, "epochs": 10, "patience": 4}
MARGIN = 0.35


@pytest.fixture(scope="module")
def result(params: Params):
    result = FAMILY.run(params.transformer.model_copy(update=SMALL), FrameInputs(), CPU)
    yield result
    for figure in result.figures.values():
        plt.close(figure)


def test_the_transformer_beats_tfidf_by_a_wide_margin(result):
    """The family's claim: labels that need word order (negation, "but" clauses) leave a
    bag of words near chance, while attention over positions reads them."""
    transformer = result.metrics["transformer"]["test_accuracy"]
    baseline = result.metrics["tfidf_logistic"]["test_accuracy"]
    assert baseline < 0.6  # near chance: the bags carry (almost) no label signal
    assert transformer >= 0.95
    assert transformer >= baseline + MARGIN


def test_run_gives_the_two_runs_the_figure_and_the_vocabulary(result, params: Params):
    transformer, tfidf = result.runs
    assert (transformer.name, tfidf.name) == ("transformer", "tfidf_logistic")
    assert transformer.dataset == tfidf.dataset == "synthetic_text"
    assert set(tfidf.metrics) == {"val_accuracy", "test_accuracy"} and tfidf.model is None
    assert tfidf.params == {"seed": params.transformer.seed}
    metrics = transformer.metrics
    assert metrics["epochs_run"] == len(transformer.history["val_loss"])
    assert set(transformer.history) == {"train_loss", "val_loss", "val_metric"}
    assert metrics["val_loss"] == min(transformer.history["val_loss"])
    assert metrics["val_accuracy"] == transformer.history["val_metric"][metrics["best_epoch"]]
    assert transformer.figures == ["attention"] and set(result.figures) == {"attention"}
    assert transformer.tags["device"] == "cpu"
    vocabulary = result.extras["model"]["vocabulary"]
    assert vocabulary[:2] == ["<pad>", "<unk>"] and len(vocabulary) == metrics["vocab_size"]


def test_the_saved_model_rebuilds_from_its_builder(result):
    saved = result.runs[0].model
    assert not saved.scored  # it reads token ids, not a split table: evaluate skips it
    assert saved.config == result.extras["model"]["config"]
    rebuilt = build(saved.builder, saved.config)
    rebuilt.load_state_dict(saved.estimator.state_dict())
    ids = torch.from_numpy(saved.example[:50])
    labels = saved.estimator.eval()(ids).argmax(dim=1)
    assert accuracy(rebuilt, ids, labels, CPU) == 1.0  # the same predictions
    assert saved.example.shape[1] == SMALL["max_length"] == len(saved.features.columns)


def test_same_seed_gives_identical_training(params: Params):
    tiny = SMALL | {"n_samples": 300, "d_model": 16, "n_heads": 2, "n_layers": 1, "epochs": 2}
    section = params.transformer.model_copy(update=tiny)
    runs = [FAMILY.run(section, FrameInputs(), CPU) for _ in range(2)]
    for run in runs:
        plt.close(run.figures["attention"])
    first, again = (r.runs[0] for r in runs)
    assert first.history == again.history
    assert first.metrics | {"train_seconds": 0} == again.metrics | {"train_seconds": 0}


def test_a_non_finite_loss_names_the_key_and_returns_no_model(params: Params):
    section = params.transformer.model_copy(update=SMALL | {"n_samples": 300, "epochs": 3})
    with pytest.raises(NonFiniteLossError) as caught:
        FAMILY.run(section.model_copy(update={"learning_rate": 1e30}), FrameInputs(), CPU)
    message = str(caught.value)
    assert message.startswith("transformer: training loss is")
    assert "transformer.learning_rate is 1e+30" in message


def test_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4).eval()
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        theirs.out_proj.bias.copy_(ours.w_o.bias)
    query, key = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    value = torch.randn(3, 7, 16)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[0, 5:], padding[2, 3:] = True, True
    out, weights = ours(query, key, value, key_padding_mask=padding)
    expected, expected_weights = theirs(query, key, value, key_padding_mask=padding)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.mean(dim=1), expected_weights, atol=1e-6, rtol=1e-5)
    assert torch.all(weights[0, :, :, 5:] == 0)  # masked keys get no weight


def test_appending_padding_leaves_the_logits_unchanged():
    torch.manual_seed(1)
    model = TextClassificationTransformer(30, 16, 4, 2, 32, max_length=20).eval()
    ids = torch.tensor([[5, 9, 2, 7, 0, 0], [3, 4, 6, 8, 10, 11]])
    padded = torch.cat([ids, torch.zeros(2, 10, dtype=torch.int64)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded), model(ids), atol=1e-5, rtol=1e-5)
        assert torch.isfinite(model(torch.zeros(1, 8, dtype=torch.int64))).all()  # all pads


def test_tokenizer_vocabulary_from_training_texts_with_unknown_token():
    tokenizer = WordTokenizer.fit(["the movie was good", "the plot was bad", "rare"], 2)
    assert tokenizer.vocabulary[:2] == ["<pad>", "<unk>"]
    assert set(tokenizer.vocabulary[2:]) == {"the", "was"}  # seen twice; the rest -> <unk>
    ids = tokenizer.encode(["The movie WAS great", "the"], max_length=3)
    the, was = tokenizer.index["the"], tokenizer.index["was"]
    assert ids.dtype == torch.int64
    assert ids.tolist() == [[the, UNK_ID, was], [the, PAD_ID, PAD_ID]]  # truncated, padded


def test_corpus_is_seeded_balanced_and_uses_negation_and_contrast():
    first, again = make_corpus(500, 7), make_corpus(500, 7)
    assert first.equals(again)
    assert not first.equals(make_corpus(500, 8))
    assert list(first.columns) == ["text", "label"]
    assert 0.4 < first["label"].mean() < 0.6
    assert first["text"].str.contains(" not ").mean() > 0.3
    assert first["text"].str.contains(" but ").mean() > 0.5
    assert np.issubdtype(first["label"].dtype, np.integer)


def test_newsgroups_offline_raises_an_error_naming_the_dataset(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="20newsgroups") as caught:
        load_newsgroups(tmp_path, download_if_missing=False)
    assert isinstance(caught.value, DataUnavailableError)  # the stage's one-line error


def test_attention_figure_has_a_head_and_a_mean_panel_per_sentence(close_figures):
    tokenizer = WordTokenizer.fit(["the movie was not good", "the plot was bad"])
    ids = tokenizer.encode(["the movie was not good", "the plot was bad"], 8)
    torch.manual_seed(0)
    model = TextClassificationTransformer(len(tokenizer), 16, 4, 1, 32, max_length=8)
    figure = attention_figure(model, tokenizer, ids, [0, 0])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titles) == 4
    assert "head 0" in titles[0] and "mean of 4 heads" in titles[1]
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()][-1] == "good"
