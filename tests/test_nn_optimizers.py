"""numpy_nn.optimizers against torch.optim, step for step in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlfund.numpy_nn.optimizers import (
    SGD,
    Adam,
    HeavyBall,
    Momentum,
    logistic_loss_and_grads,
    logistic_problem,
    make_agreement_optimizers,
    torch_agreement,
)

TOLERANCE = 1e-8
NAMES = ("sgd", "momentum", "heavy_ball", "adam")


@pytest.fixture(scope="module")
def agreement() -> dict[str, float]:
    return torch_agreement(steps=100, seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_torch_agreement_on_logistic_regression(agreement: dict[str, float], name: str):
    assert set(agreement) == set(NAMES)
    assert agreement[name] < TOLERANCE


@pytest.mark.parametrize("name", NAMES)
def test_agreement_problem_is_not_trivial(name: str):
    """The 100 steps compared with torch actually move the parameters and lower the loss."""
    x, labels, initial = logistic_problem(seed=0)
    optimizer = make_agreement_optimizers()[name][0]
    params = [p.copy() for p in initial]
    for _ in range(100):
        optimizer.step(params, logistic_loss_and_grads(x, labels, params)[1])
    assert np.max(np.abs(params[0] - initial[0])) > 0.1
    first = logistic_loss_and_grads(x, labels, initial)[0]
    assert logistic_loss_and_grads(x, labels, params)[0] < first - 0.05


def rosenbrock_grad(p: np.ndarray) -> np.ndarray:
    """Gradient of (1 - x)^2 + 10 (y - x^2)^2: non-quadratic, curved valley."""
    x, y = p
    return np.array([-2 * (1 - x) - 40 * x * (y - x**2), 20 * (y - x**2)])


# (ours, torch.optim class, torch kwargs): Momentum(lr, b) == SGD(lr (1 - b), momentum=b)
ROSENBROCK_CASES = {
    "sgd": (lambda: SGD(0.01), torch.optim.SGD, {"lr": 0.01}),
    "momentum": (lambda: Momentum(0.02, 0.8), torch.optim.SGD, {"lr": 0.02 * 0.2, "momentum": 0.8}),
    "heavy_ball": (lambda: HeavyBall(0.005, 0.9), torch.optim.SGD, {"lr": 0.005, "momentum": 0.9}),
    "adam": (lambda: Adam(0.05), torch.optim.Adam, {"lr": 0.05}),
    "adam_betas": (
        lambda: Adam(0.05, beta1=0.5, beta2=0.9, eps=1e-3),
        torch.optim.Adam,
        {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-3},
    ),
}


@pytest.mark.parametrize("case", ROSENBROCK_CASES)
def test_matches_torch_on_rosenbrock(case: str):
    make_ours, torch_class, kwargs = ROSENBROCK_CASES[case]
    ours, start = make_ours(), np.array([-1.0, 1.5])
    params = [start.copy()]
    theirs = torch.tensor(start, requires_grad=True)
    torch_opt = torch_class([theirs], **kwargs)
    for _ in range(100):
        ours.step(params, [rosenbrock_grad(params[0])])
        torch_opt.zero_grad()
        x, y = theirs
        ((1 - x) ** 2 + 10 * (y - x**2) ** 2).backward()  # torch autograd for the gradient
        torch_opt.step()
    assert np.max(np.abs(params[0] - theirs.detach().numpy())) < TOLERANCE
    assert np.max(np.abs(params[0] - start)) > 0.1


def test_first_steps_by_hand():
    g = np.array([2.0, -0.5])
    p_sgd, p_ema, p_hb, p_adam = (np.zeros(2) for _ in range(4))
    SGD(0.1).step([p_sgd], [g])
    Momentum(0.1, 0.9).step([p_ema], [g])
    HeavyBall(0.1, 0.9).step([p_hb], [g])
    Adam(0.1).step([p_adam], [g])
    np.testing.assert_allclose(p_sgd, -0.1 * g)
    np.testing.assert_allclose(p_ema, -0.1 * 0.1 * g)  # v = (1 - beta) g
    np.testing.assert_allclose(p_hb, -0.1 * g)  # v = g at step 1
    np.testing.assert_allclose(p_adam, -0.1 * np.sign(g), rtol=1e-6)  # m_hat/sqrt(v_hat) = sign


def test_state_is_per_parameter():
    """Two arrays of different shapes stepped together equal each stepped on its own."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal(4)
    grads = [[rng.standard_normal(a.shape), rng.standard_normal(b.shape)] for _ in range(5)]
    together, alone_a, alone_b = [a.copy(), b.copy()], [a.copy()], [b.copy()]
    opt, opt_a, opt_b = Adam(0.1), Adam(0.1), Adam(0.1)
    for ga, gb in grads:
        opt.step(together, [ga, gb])
        opt_a.step(alone_a, [ga])
        opt_b.step(alone_b, [gb])
    np.testing.assert_array_equal(together[0], alone_a[0])
    np.testing.assert_array_equal(together[1], alone_b[0])


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: HeavyBall(0.1), lambda: Adam()])
def test_mismatched_lists_raise(make):
    with pytest.raises(ValueError):
        make().step([np.zeros(2), np.zeros(2)], [np.ones(2)])
