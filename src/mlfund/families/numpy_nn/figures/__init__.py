"""Every figure of the numpy_nn family, one module per study.

- `functions`: activations, losses and the XOR backprop network;
- `mlp`: the curriculum's MLP experiment on two datasets;
- `descent`: optimizers, batch / mini-batch / stochastic descent, descent geometry;
- `vanishing`: per-layer gradient norms.
"""

from mlfund.families.numpy_nn.figures.descent import (
    batch_variants_figure,
    geometry_figure,
    optimizer_comparison_figure,
)
from mlfund.families.numpy_nn.figures.functions import (
    activations_figure,
    losses_figure,
    xor_figure,
)
from mlfund.families.numpy_nn.figures.mlp import MlpResult, fit_mlp_experiment, mlp_figure
from mlfund.families.numpy_nn.figures.vanishing import vanishing_figure

CAPTIONS = {
    "activations": "Activation functions (solid) and their derivatives (dashed).",
    "losses": "Loss functions and their gradients.",
    "xor": "The 2-3-1 network learning XOR: loss curve and decision surface.",
    "mlp": "The from-scratch MLP on the linearly separable and circles datasets.",
    "optimizers": "SGD, momentum (EMA), heavy ball and Adam on the curriculum's problem.",
    "batch_variants": "Batch vs mini-batch vs stochastic descent, with measured costs.",
    "geometry": "Learning rates on a quadratic valley: paths, convergence, divergence.",
    "vanishing": "Per-layer gradient norms of a 10-layer net: sigmoid vs ReLU vs skips.",
}

__all__ = [
    "CAPTIONS",
    "MlpResult",
    "activations_figure",
    "batch_variants_figure",
    "fit_mlp_experiment",
    "geometry_figure",
    "losses_figure",
    "mlp_figure",
    "optimizer_comparison_figure",
    "vanishing_figure",
    "xor_figure",
]
