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

__all__ = [
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
