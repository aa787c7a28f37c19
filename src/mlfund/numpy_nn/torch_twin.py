"""The from-scratch MLP's twin in torch: the same network as a float64
`torch.nn.Sequential`, and the epoch-time benchmark of the two.

The agreement checks (`mlfund.families.numpy_nn.agreement`), the tests and
`mlfund.bench` use them; torch is imported inside each function (seconds to import).
"""

from __future__ import annotations

import time

import numpy as np

from mlfund.numpy_nn.mlp import MLPClassifier, he_init

Array = np.ndarray


def torch_sequential(coefs: list[Array], intercepts: list[Array], activation: str):
    """An equivalent float64 `torch.nn.Sequential` holding copies of these parameters
    (e.g. a fitted model's `coefs_`, `intercepts_`, `activation`)."""
    import torch  # lazy: only the comparisons and the benchmark need torch

    hidden = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
    if activation not in hidden:
        raise ValueError(f"no torch layer for activation {activation!r}; have {sorted(hidden)}")
    layers: list[torch.nn.Module] = []
    for i, (weight, bias) in enumerate(zip(coefs, intercepts, strict=True)):
        linear = torch.nn.Linear(*weight.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight.T))  # torch stores (out, in)
            linear.bias.copy_(torch.from_numpy(bias))
        layers.append(linear)
        if i < len(coefs) - 1:
            layers.append(hidden[activation]())
    return torch.nn.Sequential(*layers)


def epoch_times(
    X: Array,
    y: Array,
    hidden_layer_sizes: tuple[int, ...],
    epochs: int,
    seed: int,
    learning_rate: float = 0.1,
    repeats: int = 3,
) -> dict[str, float]:
    """Wall seconds per full-batch epoch of `MLPClassifier` (relu) and of the same torch
    float64 CPU loop (forward, BCEWithLogits or CrossEntropy, backward, SGD step) from the
    same initial weights, timed alternately in the same run, best of `repeats` each (the
    least disturbed by other load); `ratio` = numpy / torch. `max_param_diff`: largest
    difference of the final parameters, a check that both did the same work."""
    import torch

    X = np.asarray(X, dtype=np.float64)
    model = MLPClassifier(hidden_layer_sizes, "relu", learning_rate, epochs, random_state=seed)
    classes, y_index = np.unique(y, return_inverse=True)
    sizes = [X.shape[1], *hidden_layer_sizes, 1 if len(classes) == 2 else len(classes)]
    features = torch.from_numpy(X)
    if len(classes) == 2:
        loss_fn: torch.nn.Module = torch.nn.BCEWithLogitsLoss()
        target = torch.from_numpy(y_index.astype(np.float64)[:, None])
    else:
        loss_fn, target = torch.nn.CrossEntropyLoss(), torch.from_numpy(y_index)

    def train_torch() -> torch.nn.Sequential:
        # fit draws these same weights: he_init is its first use of the seeded rng
        net = torch_sequential(*he_init(sizes, np.random.default_rng(seed)), "relu")
        optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate)
        losses = []
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = loss_fn(net(features), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # ours records its loss curve too
        return net

    numpy_s = torch_s = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(X, y)
        numpy_s = min(numpy_s, (time.perf_counter() - start) / epochs)
        start = time.perf_counter()
        net = train_torch()
        torch_s = min(torch_s, (time.perf_counter() - start) / epochs)

    ours = [p for pair in zip(model.coefs_, model.intercepts_, strict=True) for p in pair]
    theirs = [p.detach().numpy() for p in net.parameters()]  # weight (out, in), bias, ...
    diff = max(np.abs(a - b.T).max() for a, b in zip(ours, theirs, strict=True))
    return {
        "numpy_s_per_epoch": numpy_s,
        "torch_s_per_epoch": torch_s,
        "ratio": numpy_s / torch_s,
        "max_param_diff": float(diff),
    }
