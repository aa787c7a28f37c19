"""Transformer family: attention against torch's, padding invariance, the tokenizer, the
order-dependent corpus (bag of words fails, the transformer does not), the offline error."""

from __future__ import annotations

import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlfund.config import SplitSpec
from mlfund.deep.device import setup_compute
from mlfund.deep.text_corpus import DatasetUnavailableError, load_newsgroups, make_corpus
from mlfund.deep.transformer import (
    PAD_ID,
    UNK_ID,
    MultiHeadAttention,
    TextClassificationTransformer,
    WordTokenizer,
    accuracy,
    train_text_classifier,
)
from mlfund.deep.transformer_figures import attention_figure
from mlfund.splitting import three_way_split


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def _split(n: int, seed: int):
    corpus = make_corpus(n, seed)
    labels = corpus["label"].to_numpy()
    spec = SplitSpec(test_size=0.2, val_size=0.2, shuffle=True, stratify=True, seed=seed)
    rows = three_way_split(n, spec, labels)
    return [(corpus["text"].to_numpy()[r], labels[r]) for r in rows]


def test_transformer_learns_word_order_that_bag_of_words_cannot():
    train, val, test = _split(2000, 3)
    baseline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    baseline_accuracy = baseline.fit(*train).score(*test)
    assert baseline_accuracy < 0.65  # near chance: the bags carry (almost) no label signal
    tokenizer = WordTokenizer.fit(train[0])
    data = [(tokenizer.encode(t, 16), torch.from_numpy(y)) for t, y in (train, val, test)]
    config = {"vocab_size": len(tokenizer), "d_model": 32, "n_heads": 4, "n_layers": 2}
    config |= {"d_ff": 64, "max_length": 16, "dropout": 0.1}
    compute = setup_compute("cpu", "fp32", 1)
    fitted = train_text_classifier(
        config, *data[:2], learning_rate=3e-3, batch_size=64, epochs=12, patience=4,
        seed=0, compute=compute,
    )  # fmt: skip
    test_accuracy = accuracy(fitted.model, *data[2], compute)
    assert test_accuracy >= 0.9
    assert test_accuracy > baseline_accuracy + 0.25


def test_newsgroups_offline_raises_an_error_naming_the_dataset(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="20newsgroups"):
        load_newsgroups(tmp_path, download_if_missing=False)


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


def test_same_seed_gives_identical_training():
    train, val, _ = _split(300, 5)
    tokenizer = WordTokenizer.fit(train[0])
    data = [(tokenizer.encode(t, 16), torch.from_numpy(y)) for t, y in (train, val)]
    config = {"vocab_size": len(tokenizer), "d_model": 16, "n_heads": 2, "n_layers": 1}
    config |= {"d_ff": 32, "max_length": 16, "dropout": 0.1}
    compute = setup_compute("cpu", "fp32", 1)
    settings = {"learning_rate": 1e-3, "batch_size": 32, "epochs": 2, "patience": 2, "seed": 9}
    runs = [train_text_classifier(config, *data, **settings, compute=compute).history]
    runs.append(train_text_classifier(config, *data, **settings, compute=compute).history)
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_loss == runs[1].val_loss
