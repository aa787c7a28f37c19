"""The vanishing-gradient study: per-layer gradient norms of a deep MLP, by manual backprop.

One network, three variants sharing the very same weights and batch:

* "sigmoid":   h_l = sigmoid(h_{l-1} W_l)        sigmoid' <= 1/4 shrinks every backward step
* "relu":      h_l = relu(h_{l-1} W_l)           relu' is 0 or 1: no systematic shrink
* "relu_skip": h_l = h_{l-1} + relu(h_{l-1} W_l) (l >= 2) the identity path carries dL/dh back
               untouched, as in a ResNet

for hidden layers l = 1..depth-1 (input width = hidden width), then a linear output
layer W_depth (width, 1) and the mean squared error. W_l ~ N(0, 1/fan_in) (Xavier-like);
no biases, since they start at zero and do not change the story.
`first_to_last_ratio` = ||dL/dW_1|| / ||dL/dW_depth||: << 1 means the first layers barely learn.
Read it with the activations in mind: dL/dW_l = h_{l-1}^T dL/dz_l also scales with the
layer's input. The residual sums grow ||h|| with depth, so "relu_skip" lands near 5e-2 at
seed 0 while its first-layer gradient is still ~400x plain ReLU's; sigmoid's ~1e-6 is the
real vanishing (every backward step multiplies by sigmoid' <= 1/4).
"""

from __future__ import annotations

import numpy as np

from mlfund.numpy_nn.activations import get_activation
from mlfund.numpy_nn.losses import mse, mse_grad

Array = np.ndarray
KINDS = ("sigmoid", "relu", "relu_skip")
_ACTIVATION_OF = {"sigmoid": "sigmoid", "relu": "relu", "relu_skip": "relu"}


def make_problem(
    depth: int = 10, width: int = 32, seed: int = 0, n_samples: int = 256
) -> tuple[Array, Array, list[Array]]:
    """A seeded batch x (n, width) ~ N(0, 1), target y = sin(x_0) + x_1 / 2 (n, 1), weights.

    weights[l] is (width, width) for the depth-1 hidden layers and (width, 1) for the output.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, width))
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2]
    shapes = [(width, width)] * (depth - 1) + [(width, 1)]
    weights = [rng.standard_normal(shape) * np.sqrt(1.0 / shape[0]) for shape in shapes]
    return x, y, weights


def loss_and_gradients(x: Array, y: Array, weights: list[Array], kind: str) -> tuple[float, list]:
    """MSE of the network `kind` and dL/dW_l for every layer, by hand-written backprop."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    act = get_activation(_ACTIVATION_OF[kind])
    skip = kind == "relu_skip"

    # forward, keeping each layer's input h_{l-1} and pre-activation z_l
    inputs, pre_activations = [], []
    h = x  # (n, width)
    for layer, W in enumerate(weights[:-1], start=1):
        z = h @ W  # (n, width)
        inputs.append(h)
        pre_activations.append(z)
        h = h + act.forward(z) if skip and layer >= 2 else act.forward(z)
    prediction = h @ weights[-1]  # (n, 1)

    # backward: dh is dL/dh_l, walked from the output to the input
    dprediction = mse_grad(prediction, y)  # (n, 1)
    grads = [h.T @ dprediction]  # dL/dW_depth (width, 1)
    dh = dprediction @ weights[-1].T  # (n, width)
    for layer in range(len(weights) - 1, 0, -1):
        W, h_in, z = weights[layer - 1], inputs[layer - 1], pre_activations[layer - 1]
        dz = dh * act.derivative(z)  # (n, width)
        grads.append(h_in.T @ dz)  # dL/dW_layer (width, width)
        # the identity branch adds dh itself: the gradient highway of a residual network
        dh = dz @ W.T + (dh if skip and layer >= 2 else 0.0)
    return mse(prediction, y), grads[::-1]


def gradient_norms(
    kind: str, depth: int = 10, width: int = 32, seed: int = 0, n_samples: int = 256
) -> Array:
    """Frobenius norms ||dL/dW_l|| for l = 1..depth (index 0 = first layer), shape (depth,)."""
    x, y, weights = make_problem(depth, width, seed, n_samples)
    _, grads = loss_and_gradients(x, y, weights, kind)
    return np.array([np.linalg.norm(g) for g in grads])


def first_to_last_ratio(norms: Array) -> float:
    """||dL/dW_1|| / ||dL/dW_last||: << 1 means the gradient vanishes on its way back."""
    return float(norms[0] / norms[-1])
