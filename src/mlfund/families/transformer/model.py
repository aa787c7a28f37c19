"""The curriculum's attention text classifier: `MultiHeadAttention`, `TransformerBlock`,
`TextClassificationTransformer`, plus a word-level tokenizer and a training helper.

Fixes over the curriculum's code: padding is masked everywhere (attention never looks at
`<pad>` keys and mean pooling averages only real tokens, so appending pads leaves the
logits unchanged), and the vocabulary is built on the training split only, with `<unk>`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mlfund.deep.device import Compute
from mlfund.deep.training import Evaluation, Fit, train_model

if TYPE_CHECKING:
    from mlfund.core.config import TransformerParams

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


class WordTokenizer:
    """Lower-cased words and punctuation; ids 0 = `<pad>`, 1 = `<unk>`, then by frequency."""

    def __init__(self, vocabulary: list[str]) -> None:
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}

    @staticmethod
    def split(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1) -> WordTokenizer:
        """Vocabulary of the words seen at least `min_count` times in `texts` (training only)."""
        counts = Counter(word for text in texts for word in cls.split(text))
        # most frequent first, ties alphabetical: the same texts always give the same ids
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, texts: Iterable[str], max_length: int) -> torch.Tensor:
        """(n, max_length) int64 ids: truncated, then right-padded with `<pad>`."""
        rows = []
        for text in texts:
            ids = [self.index.get(w, UNK_ID) for w in self.split(text)][:max_length]
            rows.append(ids + [PAD_ID] * (max_length - len(ids)))
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, max_length)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over `n_heads` heads of width d_model / n_heads."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.d_k = n_heads, d_model // n_heads
        self.w_q, self.w_k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.w_v, self.w_o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape  # (batch, length, d_model) -> (batch, heads, length, d_k)
        return x.view(batch, length, self.n_heads, self.d_k).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (batch, q_len, d_model) and weights (batch, heads, q_len, k_len).

        `key_padding_mask` (batch, k_len) is True at padding keys, as in nn.MultiheadAttention.
        """
        q, k, v = (
            self._heads(self.w_q(query)),
            self._heads(self.w_k(key)),
            self._heads(self.w_v(value)),
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (batch, heads, q_len, k_len)
        if key_padding_mask is not None:
            # the dtype's minimum, not -inf: a row of pads only gets uniform weights, never NaN
            scores = scores.masked_fill(
                key_padding_mask[:, None, None, :], torch.finfo(scores.dtype).min
            )
        weights = torch.softmax(scores, dim=-1)
        context = self.dropout(weights) @ v  # (batch, heads, q_len, d_k)
        batch, _, length, _ = context.shape
        merged = context.transpose(1, 2).reshape(batch, length, self.n_heads * self.d_k)
        return self.w_o(merged), weights


class TransformerBlock(nn.Module):
    """Post-norm encoder block as in the curriculum: attention, then a ReLU feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(d_model, n_heads, dropout)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attention(x, x, x, key_padding_mask)
        x = self.norm1(x + self.dropout(attended))
        x = self.norm2(x + self.dropout(self.feed_forward(x)))
        return x, weights


def sinusoidal_positions(max_length: int, d_model: int) -> torch.Tensor:
    """(max_length, d_model): sin on even features, cos on odd, wavelengths 2pi..10000*2pi."""
    position = torch.arange(max_length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_length, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class TextClassificationTransformer(nn.Module):
    """Token ids (batch, length) -> class logits (batch, n_classes); id 0 is padding."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        d_ff: int,
        max_length: int,
        n_classes: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        # std d_model**-0.5 (as in "Attention is all you need"), so embedding * sqrt(d_model)
        # has unit scale like the positions; nn.Embedding's N(0, 1) times sqrt(d_model) = 8
        # drowned the positions and the model could barely read word order.
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        self.register_buffer(
            "positions", sinusoidal_positions(max_length, d_model), persistent=False
        )
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d_model, n_classes)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled features (batch, d_model) and each layer's weights (batch, heads, len, len)."""
        ids = ids.long()  # accepts float ids too (MLflow's logged example is float32)
        padding = ids == PAD_ID  # (batch, length)
        length = ids.shape[1]
        x = self.embedding(ids) * math.sqrt(self.d_model) + self.positions[:length]
        x = self.dropout(x)
        maps = []
        for block in self.blocks:
            x, weights = block(x, padding)
            maps.append(weights)
        keep = (~padding).unsqueeze(-1).to(x.dtype)  # (batch, length, 1)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)  # mean of real tokens
        return pooled, maps

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encode(ids)[0])


def build_text_transformer(**config: int | float) -> TextClassificationTransformer:
    """Builder of the pipeline: JSON-serialisable config -> model."""
    return TextClassificationTransformer(**config)  # type: ignore[arg-type]


def accuracy(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor, compute: Compute) -> float:
    """Share of correct predictions, in eval mode and without autograd (model left on the CPU)."""
    model.to(compute.device).eval()
    with torch.inference_mode():
        predicted = model(ids.to(compute.device)).argmax(dim=1).cpu()
    model.cpu()
    return float((predicted == labels).float().mean())


def _val_accuracy(result: Evaluation) -> float:
    return float((result.outputs.argmax(dim=1) == result.targets).float().mean())


def train_text_classifier(
    config: dict[str, int | float],
    p: TransformerParams,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    compute: Compute,
) -> Fit:
    """Adam + cross-entropy with early stopping on the validation loss (best weights kept);
    `train` and `val` are (ids (n, max_length), labels (n,)). The history's val_metric is
    the validation accuracy of each epoch."""
    return train_model(
        lambda: build_text_transformer(**config),
        train,
        val,
        nn.CrossEntropyLoss(),
        compute,
        seed=p.seed,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.epochs,
        patience=p.patience,
        metric=_val_accuracy,
        name="transformer/transformer",
    )
