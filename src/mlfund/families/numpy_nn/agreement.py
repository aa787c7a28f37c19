"""From-scratch pieces against torch on the same inputs: the agreement as numbers.

The tests assert these bounds; the pipeline also records them as metrics
(`numpy_nn.agreement.*`), so a regression in any from-scratch piece shows in
`dvc metrics diff`. Each function imports torch inside (seconds to import).
"""

from __future__ import annotations

import numpy as np

from mlfund.numpy_nn.layers import Conv2d, causal_mask, scaled_dot_product_attention
from mlfund.numpy_nn.layers import scaled_dot_product_attention_backward as attention_backward
from mlfund.numpy_nn.mlp import MLPClassifier

Array = np.ndarray


def _max_abs(ours: Array, theirs) -> float:
    return float(np.max(np.abs(ours - theirs.detach().numpy())))


def conv2d_agreement(seed: int = 0) -> float:
    """Largest |difference| of y, dx, dW, db between our Conv2d and torch's conv2d."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    conv = Conv2d(3, 8, kernel_size=3, stride=2, padding=1, seed=seed)
    x = rng.standard_normal((4, 3, 11, 9))  # odd sizes so stride and padding both matter
    out = conv.forward(x)
    grad_out = rng.standard_normal(out.shape)
    dx = conv.backward(grad_out)

    x_t = torch.tensor(x, requires_grad=True)
    w_t = torch.tensor(conv.weight, requires_grad=True)
    b_t = torch.tensor(conv.bias, requires_grad=True)
    out_t = F.conv2d(x_t, w_t, b_t, stride=2, padding=1)
    out_t.backward(torch.from_numpy(grad_out))
    pairs = ((out, out_t), (dx, x_t.grad), (conv.dweight, w_t.grad), (conv.dbias, b_t.grad))
    return max(_max_abs(ours, theirs) for ours, theirs in pairs)


def attention_agreement(seed: int = 0) -> float:
    """Largest |difference| of the output and dQ, dK, dV vs F.scaled_dot_product_attention,
    with a causal mask."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((2, 3, 6, 8)) for _ in range(3))  # (batch, heads, L, d)
    mask = causal_mask(6)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    grad_out = rng.standard_normal(out.shape)
    grads = attention_backward(grad_out, q, k, v, weights)

    tensors = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out_t = F.scaled_dot_product_attention(*tensors, attn_mask=torch.from_numpy(mask))
    out_t.backward(torch.from_numpy(grad_out))
    return max(
        _max_abs(out, out_t),
        *(_max_abs(g, t.grad) for g, t in zip(grads, tensors, strict=True)),
    )


def least_squares_agreement(
    features: Array, target: Array, learning_rate: float = 0.1, epochs: int = 1000
) -> float:
    """Exercise 1: largest |difference| between gradient descent's weights and bias and the
    closed-form least-squares solution (np.linalg.lstsq with a bias column)."""
    from mlfund.numpy_nn.descent import gradient_descent_linear_regression

    weights, bias, _ = gradient_descent_linear_regression(features, target, learning_rate, epochs)
    design = np.column_stack([features, np.ones(len(features))])
    exact = np.linalg.lstsq(design, target, rcond=None)[0]
    return float(np.max(np.abs(np.r_[weights, bias] - exact)))


def mlp_agreement(model: MLPClassifier, features: Array, labels: Array) -> float:
    """Largest |difference| of probabilities and parameter gradients vs the same torch net."""
    import torch
    import torch.nn.functional as F

    from mlfund.numpy_nn.torch_twin import torch_sequential

    encoded = np.searchsorted(model.classes_, labels)
    probs = model.predict_proba(features)
    d_weights, d_biases = model.gradients(features, encoded)

    net = torch_sequential(model.coefs_, model.intercepts_, model.activation)
    logits = net(torch.from_numpy(np.asarray(features, dtype=np.float64)))
    if len(model.classes_) == 2:
        target = torch.from_numpy(encoded.astype(np.float64)).reshape(-1, 1)
        F.binary_cross_entropy_with_logits(logits, target).backward()
        probs_t = torch.sigmoid(logits)
        probs_t = torch.cat([1 - probs_t, probs_t], dim=1)
    else:
        F.cross_entropy(logits, torch.from_numpy(encoded)).backward()
        probs_t = torch.softmax(logits, dim=1)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    return max(
        _max_abs(probs, probs_t),
        *(_max_abs(dw, lin.weight.grad.T) for dw, lin in zip(d_weights, linears, strict=True)),
        *(_max_abs(db.ravel(), lin.bias.grad) for db, lin in zip(d_biases, linears, strict=True)),
    )
