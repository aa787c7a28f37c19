"""First-order optimizers in NumPy, each matching its torch.optim counterpart step for step.

Curriculum: "Gradient Descent Variants" (`GradientDescentOptimizers`). The curriculum keeps
one velocity for "the weights" and one for "the biases" inside a single object, and a single
Adam step counter shared by both; here every optimizer keeps state per parameter (one slot
per position in the `params` list, like torch's per-tensor state), so any number of arrays
can be optimized and two optimizers never share state.

Interface: `step(params, grads)` updates each `params[i]` in place with `grads[i]`; pass the
same list of arrays, in the same order, at every step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mlfund.numpy_nn.losses import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
)

Array = np.ndarray


class Optimizer(Protocol):
    def step(self, params: list[Array], grads: list[Array]) -> None: ...


def _zeros_like_each(params: list[Array]) -> list[Array]:
    return [np.zeros_like(p) for p in params]


class SGD:
    """Plain gradient descent: p <- p - lr * g (torch.optim.SGD without momentum)."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, params: list[Array], grads: list[Array]) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= self.lr * g


class Momentum:
    """The curriculum's momentum: an exponential moving average of the gradients.

    v <- beta * v + (1 - beta) * g;  p <- p - lr * v   (v starts at 0).
    Since v is (1 - beta) times heavy-ball's velocity, this equals torch.optim.SGD with
    `lr * (1 - beta)` and `momentum=beta`: the same method with a 10x smaller step at 0.9.
    """

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        self.lr, self.beta = lr, beta
        self.velocity: list[Array] | None = None

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if self.velocity is None:
            self.velocity = _zeros_like_each(params)
        for p, g, v in zip(params, grads, self.velocity, strict=True):
            v *= self.beta
            v += (1.0 - self.beta) * g
            p -= self.lr * v


class HeavyBall:
    """Classical (Polyak) momentum exactly as torch.optim.SGD(momentum=m, dampening=0).

    v <- m * v + g (the first step sets v = g);  p <- p - lr * v.
    """

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum
        self.velocity: list[Array] | None = None

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if self.velocity is None:
            self.velocity = [g.copy() for g in grads]  # torch: buf = clone(grad) at step 1
        else:
            for v, g in zip(self.velocity, grads, strict=True):
                v *= self.momentum
                v += g
        for p, v in zip(params, self.velocity, strict=True):
            p -= self.lr * v


class Adam:
    """Adam with bias correction, in torch.optim.Adam's order of operations.

    m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    eps is added after the square root of the bias-corrected second moment (as torch does);
    the curriculum's formula is the same. `t` counts steps, shared by all parameters of one
    optimizer since they are always stepped together.
    """

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: list[Array] | None = None
        self.v: list[Array] | None = None

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if self.m is None or self.v is None:
            self.m, self.v = _zeros_like_each(params), _zeros_like_each(params)
        self.t += 1
        step_size = self.lr / (1.0 - self.beta1**self.t)
        bias_correction2_sqrt = (1.0 - self.beta2**self.t) ** 0.5
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m += (1.0 - self.beta1) * (g - m)  # torch's lerp form of the same EMA
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= step_size * m / (np.sqrt(v) / bias_correction2_sqrt + self.eps)


# ------------------------------------------------------------ agreement with torch.optim
# Hyper-parameters of the agreement check: torch class name and keyword arguments, and ours.
AGREEMENT_LR = 0.1
AGREEMENT_BETA = 0.9
AGREEMENT_ADAM_LR = 0.01


def make_agreement_optimizers() -> dict[str, tuple[Optimizer, str, dict[str, float]]]:
    """name -> (our optimizer, torch.optim class name, torch keyword arguments)."""
    lr, beta = AGREEMENT_LR, AGREEMENT_BETA
    return {
        "sgd": (SGD(lr), "SGD", {"lr": lr}),
        # EMA momentum == torch SGD with a (1 - beta)-scaled learning rate (see `Momentum`)
        "momentum": (Momentum(lr, beta), "SGD", {"lr": lr * (1 - beta), "momentum": beta}),
        "heavy_ball": (HeavyBall(lr, beta), "SGD", {"lr": lr, "momentum": beta}),
        "adam": (Adam(AGREEMENT_ADAM_LR), "Adam", {"lr": AGREEMENT_ADAM_LR}),
    }


def logistic_problem(seed: int, n: int = 64, d: int = 3) -> tuple[Array, Array, list[Array]]:
    """A small, non-separable logistic regression: features (n, d), labels (n, 1), params.

    Non-quadratic (so Adam's per-coordinate scaling and momentum both matter) and with two
    parameter arrays, weights (d, 1) and bias (1,), so per-parameter state is exercised.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    logits = x @ rng.standard_normal((d, 1))
    labels = (rng.random((n, 1)) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64)
    params = [rng.standard_normal((d, 1)), np.zeros(1)]
    return x, labels, params


def logistic_loss_and_grads(x: Array, labels: Array, params: list[Array]) -> tuple[float, list]:
    weights, bias = params
    logits = x @ weights + bias  # (n, 1)
    d_logits = binary_cross_entropy_with_logits_grad(logits, labels)  # (n, 1)
    grads = [x.T @ d_logits, d_logits.sum(axis=0)]  # (d, 1), (1,)
    return binary_cross_entropy_with_logits(logits, labels), grads


def torch_agreement(steps: int = 100, seed: int = 0) -> dict[str, float]:
    """Max |parameter difference| after `steps` steps, ours vs torch.optim, per optimizer.

    Both sides start from the same parameters of `logistic_problem(seed)` and recompute
    the gradient at their own current parameters each step (ours by hand, torch by autograd),
    so any drift between the two optimizers would compound rather than hide.
    """
    import torch
    import torch.nn.functional as F

    x, labels, initial = logistic_problem(seed)
    x_t, labels_t = torch.from_numpy(x), torch.from_numpy(labels)
    differences = {}
    for name, (ours, torch_name, kwargs) in make_agreement_optimizers().items():
        params = [p.copy() for p in initial]
        theirs = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in initial]
        torch_opt = getattr(torch.optim, torch_name)(theirs, **kwargs)
        for _ in range(steps):
            ours.step(params, logistic_loss_and_grads(x, labels, params)[1])
            torch_opt.zero_grad()
            logits = x_t @ theirs[0] + theirs[1]
            F.binary_cross_entropy_with_logits(logits, labels_t).backward()
            torch_opt.step()
        differences[name] = max(
            float(np.max(np.abs(p - t.detach().numpy())))
            for p, t in zip(params, theirs, strict=True)
        )
    return differences
