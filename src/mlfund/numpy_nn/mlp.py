"""A multi-layer perceptron from scratch in NumPy, as a scikit-learn classifier.

Curriculum: "Feedforward Networks > Building a Multi-Layer Perceptron from Scratch".
What changed from the curriculum's `NeuralNetwork`, and why:
- Its init draws from the unseeded global RNG; here `np.random.default_rng(random_state)`
  draws the weights (and the mini-batch shuffles), so a fit is reproducible. Its comment
  says "Xavier" but the formula `randn * sqrt(2 / fan_in)` is He init; that formula is kept.
- It applies a sigmoid and then clips probabilities into a log; here the output layer gives
  logits and the loss is the log-sum-exp cross-entropy from logits (no log(0), no clipping),
  with the same gradient `sigmoid(z) - y` it backpropagates. More than two classes get K
  logits and softmax cross-entropy instead of one sigmoid.
- Hidden activation is a parameter (relu/sigmoid/tanh/...), not ReLU hard-coded.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mlfund.numpy_nn.activations import get_activation, sigmoid, softmax
from mlfund.numpy_nn.losses import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    cross_entropy_with_logits,
    cross_entropy_with_logits_grad,
)

Array = np.ndarray


def he_init(sizes: list[int], rng: np.random.Generator) -> tuple[list[Array], list[Array]]:
    """Curriculum init: weights N(0, 1) * sqrt(2 / fan_in) of shape (fan_in, fan_out),
    drawn layer by layer from `rng`; zero biases of shape (fan_out,)."""
    coefs = [
        rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]
    return coefs, [np.zeros(fan_out) for fan_out in sizes[1:]]


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Fully connected network trained by plain gradient descent on cross-entropy.

    Layers are `[n_features, *hidden_layer_sizes, n_outputs]` with `n_outputs = 1` (one
    logit, binary cross-entropy) for two classes and `K` (softmax cross-entropy) otherwise.
    `batch_size=None` is full-batch gradient descent, as the curriculum; an int gives
    mini-batches reshuffled every epoch. `random_state`: int, None or a numpy Generator.

    Fitted attributes: `classes_`, `n_features_in_`, `coefs_` (list of (fan_in, fan_out)),
    `intercepts_` (list of (fan_out,)), `loss_curve_` (mean training loss of each epoch,
    measured before that epoch's updates in the full-batch case).
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (8, 4),
        activation: str = "relu",
        learning_rate: float = 0.1,
        epochs: int = 1000,
        batch_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)  # float64 working copy
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"need samples of at least two classes; got one class {y[0]!r}")
        hidden = self._hidden_sizes()
        get_activation(self.activation)  # ValueError naming an unknown activation
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate!r}")
        if not (isinstance(self.epochs, numbers.Integral) and self.epochs >= 1):
            raise ValueError(f"epochs must be an int >= 1; got {self.epochs!r}")
        if self.batch_size is not None and not (
            isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1
        ):
            raise ValueError(f"batch_size must be None or an int >= 1; got {self.batch_size!r}")

        rng = np.random.default_rng(self.random_state)
        n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        sizes = [X.shape[1], *hidden, n_outputs]
        self.coefs_, self.intercepts_ = he_init(sizes, rng)  # first use of rng

        targets = self._targets(y_index)  # (n, n_outputs) float64
        n = X.shape[0]
        losses = np.empty(self.epochs)
        for epoch in range(self.epochs):
            if self.batch_size is None:
                losses[epoch] = self._step(X, targets)
                continue
            order = rng.permutation(n)
            total = 0.0
            for start in range(0, n, self.batch_size):
                rows = order[start : start + self.batch_size]
                total += self._step(X[rows], targets[rows]) * len(rows)
            losses[epoch] = total / n  # sample-weighted mean of the batch losses
        self.loss_curve_ = losses
        return self

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be ints >= 1; got {sizes!r}")
        return sizes

    def _targets(self, y_index: Array) -> Array:
        """Class indices (n,) -> float targets: (n, 1) 0/1 if binary, else (n, K) one-hot."""
        y_index = np.asarray(y_index, dtype=np.intp).ravel()
        if len(self.classes_) == 2:
            return y_index.astype(np.float64)[:, None]
        return np.eye(len(self.classes_))[y_index]

    def _loss_functions(self):
        if len(self.classes_) == 2:
            return binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad
        return cross_entropy_with_logits, cross_entropy_with_logits_grad

    # ------------------------------------------------------------ forward / backward
    def _forward(self, X: Array) -> tuple[list[Array], list[Array]]:
        """Inputs and hidden outputs [X, h1, ...], pre-activations [z1, ..., logits]."""
        act = get_activation(self.activation).forward
        inputs, pre = [X], []
        last = len(self.coefs_) - 1
        for i, (weight, bias) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            z = inputs[-1] @ weight  # (n, fan_out)
            z += bias
            pre.append(z)
            if i < last:
                inputs.append(act(z))
        return inputs, pre

    def _backward(
        self, inputs: list[Array], pre: list[Array], grad_logits: Array
    ) -> tuple[list[Array], list[Array]]:
        """Chain rule from dL/dlogits (n, n_outputs) back to every weight and bias."""
        derivative = get_activation(self.activation).derivative
        n_layers = len(self.coefs_)
        grads_w: list[Array] = [np.empty(0)] * n_layers
        grads_b: list[Array] = [np.empty(0)] * n_layers
        delta = grad_logits  # dL/dz of the current layer, (n, fan_out)
        for i in range(n_layers - 1, -1, -1):
            grads_w[i] = inputs[i].T @ delta  # (fan_in, fan_out); delta already holds 1/n
            grads_b[i] = delta.sum(axis=0)  # (fan_out,)
            if i > 0:
                delta = delta @ self.coefs_[i].T  # dL/dh, (n, fan_in)
                delta *= derivative(pre[i - 1])  # dL/dz = dL/dh * act'(z)
        return grads_w, grads_b

    def _step(self, X: Array, targets: Array) -> float:
        """One gradient-descent update on (X, targets); returns the loss before it."""
        loss_fn, loss_grad = self._loss_functions()
        inputs, pre = self._forward(X)
        loss = loss_fn(pre[-1], targets)
        grads_w, grads_b = self._backward(inputs, pre, loss_grad(pre[-1], targets))
        for weight, bias, d_weight, d_bias in zip(
            self.coefs_, self.intercepts_, grads_w, grads_b, strict=True
        ):
            d_weight *= self.learning_rate  # in place: the gradient is not needed again
            weight -= d_weight
            bias -= self.learning_rate * d_bias
        return loss

    def forward(self, X: Any) -> tuple[list[Array], list[Array]]:
        """(activations, pre_activations) as the curriculum: activations = [X, h1, ...,
        probabilities] (sigmoid (n, 1) if binary, softmax (n, K) otherwise) and
        pre_activations = [z1, ..., logits]."""
        inputs, pre = self._forward(self._check_X(X))
        out = sigmoid(pre[-1]) if len(self.classes_) == 2 else softmax(pre[-1])
        return [*inputs, out], pre

    def gradients(self, X: Any, y_encoded: Any) -> tuple[list[Array], list[Array]]:
        """d(mean loss)/d(coefs_[i]) and d/d(intercepts_[i]) at the current parameters.

        `y_encoded`: class indices into `classes_` (0/1 for binary), shape (n,)."""
        inputs, pre = self._forward(self._check_X(X))
        _, loss_grad = self._loss_functions()
        return self._backward(inputs, pre, loss_grad(pre[-1], self._targets(y_encoded)))

    # ------------------------------------------------------------------ prediction
    def _check_X(self, X: Any) -> Array:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def decision_function(self, X: Any) -> Array:
        """Logits: (n,) for binary (positive means classes_[1]), (n, K) otherwise."""
        logits = self._forward(self._check_X(X))[1][-1]
        return logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X: Any) -> Array:
        logits = self.decision_function(X)
        if logits.ndim == 1:
            positive = sigmoid(logits)
            return np.column_stack([1.0 - positive, positive])  # (n, 2)
        return softmax(logits)

    def predict(self, X: Any) -> Array:
        # From the logits, so predict agrees exactly with decision_function's sign/argmax
        logits = self.decision_function(X)
        index = (logits > 0).astype(np.intp) if logits.ndim == 1 else logits.argmax(axis=1)
        return self.classes_[index]
