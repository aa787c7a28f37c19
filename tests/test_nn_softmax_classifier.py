"""SoftmaxClassifier and MultiClassPerceptron vs finite differences and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlfund.numpy_nn.softmax_classifier import (
    MultiClassPerceptron,
    SoftmaxClassifier,
    softmax_loss_and_grad,
)


@pytest.fixture(scope="module")
def blobs():
    """make_blobs(600, 4 centers, random_state=42), stratified 75/25 split."""
    X, y = make_blobs(n_samples=600, centers=4, random_state=42)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def standardized_blobs(blobs):
    X_train, X_test, y_train, y_test = blobs
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_softmax_loss_gradient_matches_finite_differences(l2):
    rng = np.random.default_rng(0)
    X, W, b = rng.normal(size=(7, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    Y = np.eye(4)[rng.integers(0, 4, size=7)]
    _, dW, db = softmax_loss_and_grad(W, b, X, Y, l2)
    h = 1e-6
    for param, grad in ((W, dW), (b, db)):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            param[index] = original + h
            up = softmax_loss_and_grad(W, b, X, Y, l2)[0]
            param[index] = original - h
            down = softmax_loss_and_grad(W, b, X, Y, l2)[0]
            param[index] = original
            numeric[index] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_softmax_classifier_learns_blobs(blobs):
    X_train, X_test, y_train, y_test = blobs
    model = SoftmaxClassifier(random_state=0).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.95
    assert model.coef_.shape == (4, 2) and model.intercept_.shape == (4,)
    assert model.loss_curve_.shape == (501,)
    assert model.loss_curve_[-1] < 0.1 * model.loss_curve_[0]
    np.testing.assert_allclose(model.predict_proba(X_test).sum(axis=1), 1.0)


def test_softmax_classifier_keeps_label_values(blobs):
    X_train, _, y_train, _ = blobs
    labels = np.array(["ant", "bee", "cat", "dog"])[y_train]
    model = SoftmaxClassifier(epochs=50, random_state=0).fit(X_train, labels)
    assert list(model.classes_) == ["ant", "bee", "cat", "dog"]
    assert set(model.predict(X_train)) <= set(labels)


def test_softmax_classifier_with_l2_is_sklearn_logistic_regression(standardized_blobs):
    """mean CE + l2/2 ||W||^2 has the minimiser of LogisticRegression(C = 1 / (l2 * n))."""
    X_train, X_test, y_train, _ = standardized_blobs
    l2 = 0.01
    mine = SoftmaxClassifier(learning_rate=1.0, epochs=5000, l2=l2, random_state=0)
    mine.fit(X_train, y_train)
    theirs = LogisticRegression(C=1 / (l2 * len(X_train)), tol=1e-12, max_iter=10_000)
    theirs.fit(X_train, y_train)
    np.testing.assert_allclose(mine.coef_, theirs.coef_, atol=1e-5)
    np.testing.assert_allclose(mine.intercept_, theirs.intercept_, atol=1e-5)
    np.testing.assert_allclose(mine.predict_proba(X_test), theirs.predict_proba(X_test), atol=1e-6)
    assert np.mean(mine.predict(X_test) == theirs.predict(X_test)) >= 0.98


def test_binary_decision_function_is_the_logit_difference(blobs):
    X_train, _, y_train, _ = blobs
    keep = y_train < 2
    model = SoftmaxClassifier(epochs=100, random_state=0).fit(X_train[keep], y_train[keep])
    proba = model.predict_proba(X_train[keep])[:, 1]
    # sigmoid(z1 - z0) is the softmax probability of class 1
    np.testing.assert_allclose(1 / (1 + np.exp(-model.decision_function(X_train[keep]))), proba)


def test_multiclass_perceptron_learns_blobs(blobs):
    X_train, X_test, y_train, y_test = blobs
    perceptron = MultiClassPerceptron(input_size=2, num_classes=4, seed=0)
    perceptron.train(X_train, y_train, epochs=100)
    assert perceptron.score(X_test, y_test) >= 0.95
    assert perceptron.mistakes_[-1] == 0  # these blobs are separable: it stops early


def test_multiclass_perceptron_is_seeded():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(80, 3)), rng.integers(0, 3, size=80)  # not separable
    a = MultiClassPerceptron(3, 3, seed=4).train(X, y, epochs=5)
    b = MultiClassPerceptron(3, 3, seed=4).train(X, y, epochs=5)
    c = MultiClassPerceptron(3, 3, seed=5).train(X, y, epochs=5)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)
    assert len(a.mistakes_) == 5 and min(a.mistakes_) > 0


@parametrize_with_checks([SoftmaxClassifier(random_state=0)])
def test_softmax_classifier_is_a_sklearn_estimator(estimator, check):
    check(estimator)
