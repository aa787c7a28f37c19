"""The curriculum's VAE and GAN on its two 2-D Gaussian clusters.

Both models (`model.py`) train on a seeded sample of the clusters; their per-epoch
losses go to MLflow in one batch after training (logging each of ~500 epochs as it
happens cost more than the training itself). Their samples are scored against an
independent real sample by energy distance and per-cluster coverage, next to the energy
distance between two real samples (what a perfect generator would get). The samplers
(VAE decoder, GAN generator: latent (n, latent_dim) float32 -> (n, 2) points) are saved
and logged to MLflow; their inputs are not a split table, so evaluate does not score
them and the quality metrics are train-side metrics.

The two models keep their own loops (`model.py`): the VAE's loss takes the encoder's
outputs and the GAN steps two optimizers, which `mlfund.deep.training.train_model`'s
one-loss `fit` does not express; the loops share their epoch and batch code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, epoch_tables
from mlfund.families.generative import model as gen
from mlfund.families.generative.figures import CAPTIONS, GenerativePanels, six_panel_figure

if TYPE_CHECKING:
    from mlfund.core.config import GenerativeParams
    from mlfund.deep.device import Compute

DATASET = "two_gaussian_clusters"
BUILDER = "mlfund.families.generative.model:build_sampler"
# Seed offsets so the training data, the reference sample, the baseline's second real
# sample and each model's latent draws are independent of one another.
REFERENCE_SEED, BASELINE_SEED, VAE_DRAW_SEED, GAN_DRAW_SEED = 1, 2, 3, 4


def run(p: GenerativeParams, inputs: Inputs, compute: Compute) -> FamilyResult:
    """Train the VAE, then the GAN; score their samples; one comparison run with the figure."""
    data = gen.make_clusters(p.n_samples, p.seed)
    reference = gen.make_clusters(p.n_generated, p.seed + REFERENCE_SEED)
    example = np.random.default_rng(p.seed).standard_normal((5, p.latent_dim)).astype(np.float32)
    latents = pd.DataFrame(example, columns=[f"z{i}" for i in range(p.latent_dim)])

    def sampler(kind: str, model) -> SavedModel:
        config = {"kind": kind, "latent_dim": p.latent_dim, "hidden": p.hidden_size}
        return SavedModel(
            model,
            "regression",
            latents,
            "point",
            builder=BUILDER,
            config=config,
            example=example,
            scored=False,  # it takes latents, not a split table's rows
        )

    with diverging("generative", "generative.learning_rate", p.learning_rate):
        vae, vae_fit = gen.train_vae(data, p, compute)
        gan_fit = gen.train_gan(data, p, compute)
    # each model's latents come from a generator of their own: the order does not matter
    vae_samples = gen.sample(
        vae_fit.model, p.n_generated, p.latent_dim, p.seed + VAE_DRAW_SEED, compute
    )
    vae_metrics = gen.quality(vae_samples, reference) | {
        "final_loss": vae_fit.losses["loss"][-1],
        "train_seconds": vae_fit.seconds,
    }
    gan_samples = gen.sample(
        gan_fit.model, p.n_generated, p.latent_dim, p.seed + GAN_DRAW_SEED, compute
    )
    gan_metrics = gen.quality(gan_samples, reference) | {
        "final_loss": gan_fit.losses["generator"][-1],
        "final_discriminator_loss": gan_fit.losses["discriminator"][-1],
        "train_seconds": gan_fit.seconds,
    }
    baseline = gen.make_clusters(p.n_generated, p.seed + BASELINE_SEED)
    real_vs_real = gen.quality(baseline, reference)
    metrics = {"vae": vae_metrics, "gan": gan_metrics, "real_vs_real": real_vs_real}
    panels = GenerativePanels(
        real=data,
        vae_reconstruction=gen.reconstruct(vae, data, compute),
        vae_samples=vae_samples,
        gan_samples=gan_samples,
        vae_loss=vae_fit.losses["loss"],
        gan_losses=gan_fit.losses,
        quality=metrics,
        baseline=metrics["real_vs_real"]["energy_distance"],
    )
    tags = compute.describe()
    runs = [
        ModelRun(
            "vae",
            DATASET,
            p.model_dump(),
            vae_metrics,
            sampler("vae", vae_fit.model),
            vae_fit.losses,
            tags=tags,
        ),
        ModelRun(
            "gan",
            DATASET,
            p.model_dump(),
            gan_metrics,
            sampler("gan", gan_fit.model),
            {f"{key}_loss": values for key, values in gan_fit.losses.items()},
            tags=tags | {"gan_learning_rate": str(gen.GAN_LEARNING_RATE)},
        ),
        ModelRun(
            "comparison",
            DATASET,
            p.model_dump(),
            {f"{k}_energy_distance": v["energy_distance"] for k, v in metrics.items()},
            figures=["vae_gan_samples"],
            tags=tags,
        ),
    ]
    return FamilyResult(
        runs,
        figures={"vae_gan_samples": six_panel_figure(panels)},
        plots=epoch_tables(runs),  # the comparison run has no curves: no table
        captions=CAPTIONS,
        metrics_table=metrics,
    )
