"""MLPClassifier against scikit-learn's estimator checks, torch autograd and torch.optim.SGD,
and the curriculum's two experiments."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
import torch
from sklearn.datasets import make_circles, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlfund.families.numpy_nn.figures import MlpResult, fit_mlp_experiment, mlp_figure
from mlfund.numpy_nn.mlp import MLPClassifier, he_init
from mlfund.numpy_nn.torch_twin import epoch_times, torch_sequential

TOL = 1e-10
ACTIVATIONS = ["relu", "sigmoid", "tanh"]


# ------------------------------------------------------------ scikit-learn conventions
# No expected failures: 200 epochs at lr 0.1 is enough for check_classifiers_train's
# accuracy bar (> 0.83) on its blobs, and everything else holds at any epoch count.
# (check_array_api_input is skipped by scikit-learn itself when SCIPY_ARRAY_API is unset.)
@parametrize_with_checks([MLPClassifier(epochs=200, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------ helpers and fixtures
def _data(n_classes: int, n: int = 60, n_features: int = 3):
    X, y = make_classification(
        n_samples=n,
        n_features=n_features,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=n_classes,
    )
    return X, y


@pytest.fixture(params=[2, 3], ids=["binary", "3-class"])
def data(request):
    return _data(request.param)


def _torch_loss(logits: torch.Tensor, y: np.ndarray, n_classes: int) -> torch.Tensor:
    if n_classes == 2:
        target = torch.from_numpy(y.astype(np.float64)[:, None])
        return torch.nn.BCEWithLogitsLoss()(logits, target)
    return torch.nn.CrossEntropyLoss()(logits, torch.from_numpy(y.astype(np.int64)))


def _assert_same_parameters(model: MLPClassifier, net: torch.nn.Sequential) -> None:
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    assert len(linears) == len(model.coefs_)
    for weight, bias, linear in zip(model.coefs_, model.intercepts_, linears, strict=True):
        np.testing.assert_allclose(weight, linear.weight.detach().numpy().T, rtol=0, atol=TOL)
        np.testing.assert_allclose(bias, linear.bias.detach().numpy(), rtol=0, atol=TOL)


# ------------------------------------------------------------ equivalence with torch
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_outputs_and_gradients_match_torch(data, activation):
    X, y = data
    n_classes = len(np.unique(y))
    # a few epochs so biases are non-zero and the ReLU pattern is not the init's
    model = MLPClassifier((5, 4), activation, epochs=5, random_state=0).fit(X, y)
    net = torch_sequential(model.coefs_, model.intercepts_, activation)
    _assert_same_parameters(model, net)

    logits = net(torch.from_numpy(X))
    expected = torch.sigmoid(logits) if n_classes == 2 else torch.softmax(logits, dim=1)
    activations, pre_activations = model.forward(X)
    np.testing.assert_allclose(activations[-1], expected.detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(pre_activations[-1], logits.detach().numpy(), rtol=0, atol=TOL)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=TOL)
    # predict_proba: (n, 2) = [1 - p, p] for binary, the softmax itself otherwise
    positive = expected.detach().numpy()
    np.testing.assert_allclose(proba[:, 1:] if n_classes == 2 else proba, positive, atol=TOL)

    _torch_loss(logits, y, n_classes).backward()
    grads_w, grads_b = model.gradients(X, y)
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    for d_weight, d_bias, linear in zip(grads_w, grads_b, linears, strict=True):
        np.testing.assert_allclose(d_weight, linear.weight.grad.numpy().T, rtol=0, atol=TOL)
        np.testing.assert_allclose(d_bias, linear.bias.grad.numpy(), rtol=0, atol=TOL)


def _train_torch(X, y, sizes, activation, lr, epochs, seed, batch_size=None):
    """torch.optim.SGD on the same init (and, for mini-batches, the same shuffles)."""
    rng = np.random.default_rng(seed)
    net = torch_sequential(*he_init(sizes, rng), activation)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    features, losses = torch.from_numpy(X), []
    n_classes = len(np.unique(y))
    for _ in range(epochs):
        order = np.arange(len(X)) if batch_size is None else rng.permutation(len(X))
        step = len(X) if batch_size is None else batch_size
        total = 0.0
        for start in range(0, len(X), step):
            rows = order[start : start + step]
            optimizer.zero_grad()
            loss = _torch_loss(net(features[rows]), y[rows], n_classes)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        losses.append(total / len(X))
    return net, np.array(losses)


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full-batch", "mini-batch"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_training_matches_torch_sgd(data, activation, batch_size):
    X, y = data
    n_classes = len(np.unique(y))
    sizes = [X.shape[1], 6, 3, 1 if n_classes == 2 else n_classes]
    model = MLPClassifier((6, 3), activation, 0.2, 20, batch_size, random_state=7).fit(X, y)
    net, losses = _train_torch(X, y, sizes, activation, 0.2, 20, 7, batch_size)
    _assert_same_parameters(model, net)
    np.testing.assert_allclose(model.loss_curve_, losses, rtol=0, atol=TOL)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_he_init_scale():
    """Closed form: weights have std sqrt(2 / fan_in); biases start at zero."""
    coefs, intercepts = he_init([500, 400, 1], np.random.default_rng(0))
    assert [c.shape for c in coefs] == [(500, 400), (400, 1)]
    assert coefs[0].std() == pytest.approx(np.sqrt(2 / 500), rel=0.01)
    assert all(not b.any() for b in intercepts)


# ------------------------------------------------------------ estimator behaviour
def test_no_hidden_layer_is_logistic_regression_with_string_labels():
    """With no hidden layer the net is multinomial logistic regression: trained long
    enough it reaches scikit-learn's unpenalised solution, whatever the label type."""
    X, y = _data(3)
    labels = np.array(["cat", "dog", "eel"])[y]
    model = MLPClassifier((), learning_rate=0.5, epochs=3000, random_state=0).fit(X, labels)
    reference = LogisticRegression(C=np.inf, max_iter=10_000).fit(X, labels)
    assert [c.shape for c in model.coefs_] == [(3, 3)]
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-3)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"activation": "softsign"}, "softsign"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"),
    ],
)
def test_invalid_parameters_raise_at_fit(params, match):
    X, y = _data(2)
    model = MLPClassifier(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)


# ------------------------------------------------------------ the curriculum's experiment
def _curriculum_data(name: str):
    if name == "Linearly Separable":
        return make_classification(
            n_samples=1000,
            n_features=2,
            n_redundant=0,
            n_informative=2,
            n_clusters_per_class=1,
            random_state=42,
        )
    return make_circles(n_samples=1000, factor=0.3, noise=0.1, random_state=42)


@pytest.mark.parametrize(
    ("name", "minimum"),
    [("Linearly Separable", 0.92), ("Non-linearly Separable (Circles)", 0.99)],
)
def test_curriculum_accuracy(name, minimum):
    # the curriculum's settings: [2, 8, 4, 1], relu, lr 0.1, 1000 full-batch epochs
    result = fit_mlp_experiment(name, *_curriculum_data(name), random_state=1)
    assert result.test_accuracy >= minimum
    assert len(result.loss_curve) == 1000
    assert result.loss_curve[-1] < 0.5 * result.loss_curve[0]


def test_mlp_figure_panels(close_figures):
    results = [
        fit_mlp_experiment(name, *_curriculum_data(name), epochs=50)
        for name in ("Linearly Separable", "Non-linearly Separable (Circles)")
    ]
    assert all(isinstance(r, MlpResult) for r in results)
    figure = mlp_figure(results, step=0.1)
    assert isinstance(figure, matplotlib.figure.Figure)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titles) == 6
    for row, result in enumerate(results):
        data_title, loss_title, boundary_title = titles[3 * row : 3 * row + 3]
        assert data_title.startswith(result.name) and "Original data" in data_title
        assert "Training loss curve" in loss_title
        assert f"Test Acc: {result.test_accuracy:.3f}" in boundary_title


def test_epoch_times_reports_both_and_agrees():
    X, y = _data(2, n=200)
    times = epoch_times(X, y, (8, 4), epochs=20, seed=0, repeats=1)
    assert times["numpy_s_per_epoch"] > 0 and times["torch_s_per_epoch"] > 0
    assert times["ratio"] == pytest.approx(times["numpy_s_per_epoch"] / times["torch_s_per_epoch"])
    assert times["max_param_diff"] < TOL
