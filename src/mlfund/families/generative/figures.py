"""The curriculum's six generative panels: data, VAE reconstruction and samples, GAN samples,
and both training curves, with the measured sample quality in the titles."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure

CAPTIONS = {
    "vae_gan_samples": "VAE and GAN on two Gaussian clusters: data, reconstructions, samples, "
    "latent space and losses, with the measured sample quality.",
}


@dataclass(frozen=True)
class GenerativePanels:
    real: np.ndarray  # (n, 2) training points
    vae_reconstruction: np.ndarray  # (n, 2) decoded encodings of the training points
    vae_samples: np.ndarray  # (m, 2) decoded prior draws
    gan_samples: np.ndarray  # (m, 2) generated from prior draws
    vae_loss: list[float]  # per epoch
    gan_losses: dict[str, list[float]]  # "generator", "discriminator" per epoch
    quality: dict[str, dict[str, float]]  # {"vae"|"gan": {energy_distance, coverage_...}}
    baseline: float  # energy distance between two independent real samples


def _quality(q: dict[str, float]) -> str:
    return (
        f"energy dist {q['energy_distance']:.3f}, coverage "
        f"{q['coverage_cluster_0']:.2f} / {q['coverage_cluster_1']:.2f}"
    )


def six_panel_figure(p: GenerativePanels) -> matplotlib.figure.Figure:
    """2 x 3 panels as the curriculum, on shared axes limits so the scatters compare."""
    fig, axes = new_figure(ncols=3, nrows=2, width=5.0, height=4.3)
    lims = np.percentile(np.abs(p.real), 99.9) * 1.3
    scatters = (
        (axes[0, 0], p.real, "tab:blue", f"Original data (real vs real: {p.baseline:.3f})"),
        (axes[0, 1], p.vae_reconstruction, "tab:orange", "VAE reconstruction (encoder means)"),
        (axes[0, 2], p.vae_samples, "tab:green", f"VAE samples\n{_quality(p.quality['vae'])}"),
        (axes[1, 0], p.gan_samples, "tab:red", f"GAN samples\n{_quality(p.quality['gan'])}"),
    )
    for ax, points, colour, title in scatters:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.5, color=colour)
        ax.set(title=title, xlim=(-lims, lims), ylim=(-lims, lims), aspect="equal")
        ax.grid(True)
    ax = axes[1, 1]
    ax.plot(p.vae_loss, color="tab:green")
    ax.set(title="VAE training loss (negative ELBO)", xlabel="epoch", ylabel="loss per sample")
    ax.set_yscale("log")
    ax.grid(True)
    ax = axes[1, 2]
    for name, values in p.gan_losses.items():
        ax.plot(values, label=name, alpha=0.8)
    ax.axhline(2 * np.log(2), color="grey", ls="--", lw=1, label="D at equilibrium (2 ln 2)")
    ax.axhline(np.log(2), color="grey", ls=":", lw=1, label="G at equilibrium (ln 2)")
    ax.set(title="GAN training losses", xlabel="epoch", ylabel="BCE per sample")
    ax.legend()
    ax.grid(True)
    return fig
