"""Stage train_generative: the curriculum's VAE and GAN on its two 2-D Gaussian clusters.

Both models train on a seeded sample of the clusters; their per-epoch losses go to MLflow
with steps in one batch after training (logging each of ~500 epochs as it happens cost
more than the training itself).
their samples are scored against an independent real sample by energy distance and
per-cluster coverage, next to the energy distance between two real samples (what a
perfect generator would get). The samplers (VAE decoder, GAN generator: latent
(n, latent_dim) float32 -> (n, 2) points) are logged to MLflow; their inputs are not a
split table, so the manifest is empty and the quality metrics are train-side metrics.
"""

from __future__ import annotations

import numpy as np

from mlfund.config import Params
from mlfund.deep import generative as gen
from mlfund.deep.generative_figures import GenerativePanels, six_panel_figure
from mlfund.deep.training import NonFiniteLossError
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from stages.common import FamilyOutputs, family_compute, run_stage, tracker

FAMILY = "generative"
DATASET = "two_gaussian_clusters"
# Seed offsets so the training data, the reference sample, the baseline's second real
# sample and each model's latent draws are independent of one another.
REFERENCE_SEED, BASELINE_SEED, VAE_DRAW_SEED, GAN_DRAW_SEED = 1, 2, 3, 4


def main(params: Params) -> None:
    p = params.generative
    compute = family_compute(params, FAMILY)
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    data = gen.make_clusters(p.n_samples, p.seed)
    reference = gen.make_clusters(p.n_generated, p.seed + REFERENCE_SEED)
    common = {
        "hidden": p.hidden_size,
        "latent_dim": p.latent_dim,
        "batch_size": p.batch_size,
        "seed": p.seed,
        "compute": compute,
    }
    example = np.random.default_rng(p.seed).standard_normal((5, p.latent_dim)).astype(np.float32)
    metrics: dict[str, dict[str, float]] = {}
    samples: dict[str, np.ndarray] = {}
    try:
        with track.run("vae", DATASET, p.model_dump()) as run:
            run.set_tags(compute.describe())
            vae, vae_fit = gen.train_vae(
                data,
                epochs=p.vae_epochs,
                learning_rate=p.learning_rate,
                **common,
            )
            run.history("loss", vae_fit.losses["loss"])
            samples["vae"] = gen.sample(
                vae_fit.model, p.n_generated, p.latent_dim, p.seed + VAE_DRAW_SEED, compute
            )
            metrics["vae"] = gen.quality(samples["vae"], reference) | {
                "final_loss": vae_fit.losses["loss"][-1],
                "train_seconds": vae_fit.seconds,
            }
            run.metrics(metrics["vae"])
            run.torch_model(vae_fit.model, example)
        with track.run("gan", DATASET, p.model_dump()) as run:
            run.set_tags(compute.describe())
            gan_fit = gen.train_gan(
                data,
                epochs=p.gan_epochs,
                **common,
            )
            for key, values in gan_fit.losses.items():
                run.history(f"{key}_loss", values)
            run.set_tag("gan_learning_rate", str(gen.GAN_LEARNING_RATE))
            samples["gan"] = gen.sample(
                gan_fit.model, p.n_generated, p.latent_dim, p.seed + GAN_DRAW_SEED, compute
            )
            metrics["gan"] = gen.quality(samples["gan"], reference) | {
                "final_loss": gan_fit.losses["generator"][-1],
                "final_discriminator_loss": gan_fit.losses["discriminator"][-1],
                "train_seconds": gan_fit.seconds,
            }
            run.metrics(metrics["gan"])
            run.torch_model(gan_fit.model, example)
    except NonFiniteLossError as error:
        raise SystemExit(
            f"error: {FAMILY}: {error} (generative.learning_rate is {p.learning_rate}); "
            "no model was written"
        ) from None
    baseline = gen.make_clusters(p.n_generated, p.seed + BASELINE_SEED)
    metrics["real_vs_real"] = gen.quality(baseline, reference)
    panels = GenerativePanels(
        real=data,
        vae_reconstruction=gen.reconstruct(vae, data, compute),
        vae_samples=samples["vae"],
        gan_samples=samples["gan"],
        vae_loss=vae_fit.losses["loss"],
        gan_losses=gan_fit.losses,
        quality=metrics,
        baseline=metrics["real_vs_real"]["energy_distance"],
    )
    with track.run("comparison", DATASET, p.model_dump()) as run:
        run.set_tags(compute.describe())
        run.metrics({f"{k}_energy_distance": v["energy_distance"] for k, v in metrics.items()})
        run.artifact(save_figure(six_panel_figure(panels), out.figure("vae_gan_samples")))
    write_manifest(out.models, [])
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
