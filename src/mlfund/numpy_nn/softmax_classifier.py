"""Multi-class classification from scratch (the curriculum's Implementation Challenge 1).

Two answers to `MultiClassPerceptron(input_size, num_classes).train(X, y, epochs)`:

* `MultiClassPerceptron`: the classic one. Score every class with a linear function, predict
  the argmax; on a mistake, pull the true class's weights toward x and push the predicted
  class's away. No loss, no gradient; converges only if the classes are linearly separable.
* `SoftmaxClassifier`: multinomial logistic regression, a scikit-learn estimator trained by
  full-batch gradient descent on the mean cross-entropy (+ optional L2 on the weights).

What we fixed against the curriculum's habits: every random draw comes from a seeded
`np.random.default_rng`, and the loss gradient uses the from-logits cross-entropy
(`softmax(z) - y`), never log of a clipped probability.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mlfund.numpy_nn.activations import softmax
from mlfund.numpy_nn.losses import cross_entropy_with_logits, cross_entropy_with_logits_grad

Array = np.ndarray


def softmax_loss_and_grad(
    W: Array, b: Array, X: Array, Y: Array, l2: float = 0.0
) -> tuple[float, Array, Array]:
    """Mean cross-entropy of softmax(X W + b) against one-hot Y, plus l2/2 * ||W||^2.

    W (features, classes), b (classes,), X (n, features), Y (n, classes) one-hot.
    Returns (loss, dL/dW, dL/db). The intercept is not penalised (as in scikit-learn).
    """
    logits = X @ W + b  # (n, classes)
    loss = cross_entropy_with_logits(logits, Y) + 0.5 * l2 * float(np.sum(W * W))
    dlogits = cross_entropy_with_logits_grad(logits, Y)  # (softmax - Y) / n
    return loss, X.T @ dlogits + l2 * W, dlogits.sum(axis=0)


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression by full-batch gradient descent.

    Minimises mean cross-entropy + l2/2 * ||coef_||^2, which is scikit-learn's
    `LogisticRegression(C=1 / (l2 * n_samples))` objective divided by C * n_samples:
    same minimiser. Weights start at N(0, 0.01^2) from `random_state` (the loss is convex,
    so the start only matters for how many epochs it takes).

    Attributes: classes_ (k,), coef_ (k, features) and intercept_ (k,) laid out like
    scikit-learn's, loss_curve_ (epochs + 1,) the training loss before each step and at the end.
    """

    def __init__(
        self,
        learning_rate: float = 0.1,
        epochs: int = 500,
        l2: float = 0.0,
        random_state: int | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.l2 = l2
        self.random_state = random_state

    def fit(self, X, y) -> SoftmaxClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        Y = np.eye(len(self.classes_))[codes]  # (n, k) one-hot
        rng = np.random.default_rng(self.random_state)
        W = rng.normal(scale=0.01, size=(X.shape[1], len(self.classes_)))  # (features, k)
        b = np.zeros(len(self.classes_))
        losses = []
        for _ in range(self.epochs):
            loss, dW, db = softmax_loss_and_grad(W, b, X, Y, self.l2)
            losses.append(loss)
            W -= self.learning_rate * dW
            b -= self.learning_rate * db
        losses.append(softmax_loss_and_grad(W, b, X, Y, self.l2)[0])
        self.coef_, self.intercept_ = W.T.copy(), b
        self.loss_curve_ = np.array(losses)
        return self

    def _logits(self, X) -> Array:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_.T + self.intercept_  # (n, k)

    def decision_function(self, X) -> Array:
        """Logits (n, k); for two classes the logit difference (n,), as sklearn expects."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X) -> Array:
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X) -> Array:
        return np.log(self.predict_proba(X))

    def predict(self, X) -> Array:
        logits = self._logits(X)  # checks fitted before classes_ is touched
        return self.classes_[np.argmax(logits, axis=1)]


class MultiClassPerceptron:
    """Kesler's multi-class perceptron: one weight vector per class, argmax prediction.

    Labels are integers 0..num_classes-1. Each epoch visits the samples in a fresh order
    drawn from `default_rng(seed)` (a fixed order can cycle on non-separable data);
    `mistakes_` records how many updates each epoch made (0 = separated the training set).
    """

    def __init__(self, input_size: int, num_classes: int, seed: int = 0) -> None:
        self.weights = np.zeros((num_classes, input_size))  # zero start: no symmetry to break
        self.bias = np.zeros(num_classes)
        self.seed = seed
        self.mistakes_: list[int] = []

    def scores(self, X: Array) -> Array:
        return X @ self.weights.T + self.bias  # (n, classes)

    def predict(self, X: Array) -> Array:
        return np.argmax(self.scores(X), axis=1)

    def train(self, X: Array, y: Array, epochs: int = 100) -> MultiClassPerceptron:
        rng = np.random.default_rng(self.seed)
        self.mistakes_ = []
        for _ in range(epochs):
            mistakes = 0
            # Online by definition: each update changes the next prediction, so no batching.
            for i in rng.permutation(len(X)):
                predicted = int(np.argmax(self.weights @ X[i] + self.bias))
                if predicted != y[i]:
                    self.weights[y[i]] += X[i]
                    self.weights[predicted] -= X[i]
                    self.bias[y[i]] += 1.0
                    self.bias[predicted] -= 1.0
                    mistakes += 1
            self.mistakes_.append(mistakes)
            if mistakes == 0:
                break
        return self

    def score(self, X: Array, y: Array) -> float:
        return float(np.mean(self.predict(X) == y))
