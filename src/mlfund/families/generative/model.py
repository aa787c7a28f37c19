"""The curriculum's VAE and GAN on its two 2-D Gaussian clusters, and sample-quality measures.

Why the curriculum's VAE hardly trains (its loss stays flat), and what is changed here:

* Its data are squeezed into [0, 1] by the global min/max and reconstructed through a
  sigmoid with binary cross-entropy. For continuous targets BCE cannot reach zero: its
  minimum is the targets' own binary entropy (0.57 nats per coordinate here, 1137 summed),
  so most of the "loss" is an irreducible constant. Rerun as written it goes from 1402 to
  1382 in its 200 epochs (-1.5 %): flat on its log axis.
* It takes one full-batch Adam step per epoch: 200 steps at lr 1e-3 in total, far too few.
* The sigmoid output squashes the clusters' tails, and the sum reduction ties the loss
  scale to the data-set size.

Fixed: data standardised (mean/std kept as buffers, so the decoder outputs raw 2-D points),
a linear decoder output with a Gaussian reconstruction term (squared error over a fixed
decoder variance, which is zero at a perfect reconstruction), both terms summed over
coordinates and averaged over the batch, and shuffled mini-batches (many steps per epoch).
The GAN gets the same scaling (its tanh output could not reach points beyond +-1) and a
discriminator giving logits to `BCEWithLogitsLoss` (numerically stable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.device import Compute, seeded
from mlfund.deep.progress import EpochProgress, log_trained

CENTRES = np.array([[2.0, 2.0], [-2.0, -2.0]])  # the curriculum's cluster means
CLUSTER_VARIANCE = 0.5  # per coordinate, as the curriculum
COVERAGE_RADIUS = 1.5  # ~2.1 cluster std: about 89 % of a cluster's own points lie inside
DECODER_VARIANCE = 0.05  # Gaussian decoder variance in standardised units (recon weight)
GAN_BETAS = (0.5, 0.999)  # the usual Adam betas for GANs (DCGAN)
GAN_LEARNING_RATE = 2e-4  # the curriculum's; 1e-3 (the VAE's) unbalanced the modes on some seeds

if TYPE_CHECKING:
    from mlfund.core.config import GenerativeParams


def make_clusters(n_samples: int, seed: int) -> np.ndarray:
    """Two 2-D Gaussian clusters of n_samples // 2 points each (float32 (n, 2)), seeded."""
    rng = np.random.default_rng(seed)
    half = n_samples // 2
    cov = CLUSTER_VARIANCE * np.eye(2)
    parts = [
        rng.multivariate_normal(c, cov, size)
        for c, size in zip(CENTRES, (half, n_samples - half), strict=True)
    ]
    return np.vstack(parts).astype(np.float32)


class Scaled(nn.Module):
    """An MLP in standardised units whose forward returns raw data: net(z) * std + mean."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (n, latent) -> (n, 2) raw
        return self.net(z) * self.std + self.mean


class VAE(nn.Module):
    """The curriculum's VAE with a linear, un-standardising decoder (see the module doc)."""

    def __init__(self, input_dim: int, hidden: int, latent_dim: int, mean, std) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_var = nn.Linear(hidden, latent_dim)
        self.decoder = Scaled(_decoder_net(latent_dim, hidden, input_dim), mean, std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw x (n, 2) -> (standardised reconstruction, mu, log_var), latents (n, latent)."""
        h = self.encoder(self.decoder.standardise(x))
        mu, log_var = self.fc_mu(h), self.fc_var(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)  # reparameterisation
        return self.decoder.net(z), mu, log_var


def _decoder_net(latent_dim: int, hidden: int, output_dim: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, output_dim),
    )  # fmt: skip


def vae_loss(recon: torch.Tensor, target: torch.Tensor, mu, log_var) -> torch.Tensor:
    """Gaussian negative ELBO per sample (constant dropped): both terms mean over the batch."""
    recon_term = ((recon - target) ** 2).sum(1) / (2 * DECODER_VARIANCE)
    kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
    return (recon_term + kl).mean()


def build_generator(latent_dim: int, hidden: int, mean, std) -> Scaled:
    """The curriculum's generator (widths 2h, 4h = 128, 256) without its tanh cap."""
    net = nn.Sequential(
        nn.Linear(latent_dim, 2 * hidden), nn.ReLU(),
        nn.Linear(2 * hidden, 4 * hidden), nn.ReLU(),
        nn.Linear(4 * hidden, 2),
    )  # fmt: skip
    return Scaled(net, mean, std)


def build_discriminator(hidden: int) -> nn.Module:
    """The curriculum's discriminator, returning logits (standardised input (n, 2))."""
    return nn.Sequential(
        nn.Linear(2, 4 * hidden), nn.LeakyReLU(0.2),
        nn.Linear(4 * hidden, 2 * hidden), nn.LeakyReLU(0.2),
        nn.Linear(2 * hidden, 1),
    )  # fmt: skip


def build_sampler(kind: Literal["vae", "gan"], latent_dim: int, hidden: int) -> Scaled:
    """The untrained sampler a saved model's builder names (the VAE's decoder or the GAN's
    generator); its state_dict restores the weights and the data's mean and std."""
    mean, std = torch.zeros(2), torch.ones(2)
    if kind == "vae":
        return Scaled(_decoder_net(latent_dim, hidden, 2), mean, std)
    return build_generator(latent_dim, hidden, mean, std)


@dataclass
class GenerativeFit:
    model: nn.Module  # the sampler: latent (n, latent_dim) float32 -> raw points (n, 2)
    losses: dict[str, list[float]]  # per-epoch mean losses
    seconds: float


def _finite(value: float, what: str, epoch: int) -> float:
    if not np.isfinite(value):
        raise NonFiniteLossError(f"{what} loss became {value} at epoch {epoch}")
    return value


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _stats(data: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.asarray(data, dtype=np.float32))
    return x, x.mean(0), x.std(0)


def _epochs(
    n: int,
    batch_size: int,
    epochs: int,
    generator: torch.Generator,
    step: Callable[[torch.Tensor], dict[str, float]],
    names: dict[str, str],
    model: str,
) -> dict[str, list[float]]:
    """The loop both models share: each epoch, `step(indices)` on every shuffled mini-batch
    returns its losses by key; each key's per-epoch value is their sample-weighted mean,
    which must be finite (`names[key]` says whose loss it is in the error). Progress
    shows under `model`, as `mlfund.deep.training.fit`'s does."""
    losses: dict[str, list[float]] = {key: [] for key in names}
    progress = EpochProgress(model, epochs)
    for epoch in range(epochs):
        totals = dict.fromkeys(names, 0.0)
        for idx in _batches(n, batch_size, generator):
            for key, value in step(idx).items():
                totals[key] += value * len(idx)
        for key, name in names.items():
            losses[key].append(_finite(totals[key] / n, name, epoch))
        progress.update(epoch, {key: values[-1] for key, values in losses.items()})
    progress.close()
    return losses


def _fitted(
    name: str, model: nn.Module, losses: dict[str, list[float]], start: float, compute: Compute
) -> GenerativeFit:
    """The fit, after its summary line (no validation: the last weights are kept)."""
    seconds = time.perf_counter() - start
    last = {key: values[-1] for key, values in losses.items()}
    epochs_run = len(next(iter(losses.values())))
    log_trained(name, compute, epochs_run=epochs_run, best_epoch=-1, scores=last, seconds=seconds)
    return GenerativeFit(model, losses, seconds)


def train_vae(data: np.ndarray, p: GenerativeParams, compute: Compute) -> tuple[VAE, GenerativeFit]:
    """Mini-batch Adam on the Gaussian ELBO for `p.vae_epochs`; the fit's model is the
    decoder (the sampler)."""
    start = time.perf_counter()
    x, mean, std = _stats(data)
    with seeded(p.seed) as gen:
        vae = VAE(2, p.hidden_size, p.latent_dim, mean, std).to(compute.device)
        optimizer = torch.optim.Adam(vae.parameters(), lr=p.learning_rate)
        x = x.to(compute.device)

        def step(idx: torch.Tensor) -> dict[str, float]:
            batch = x[idx.to(compute.device)]
            recon, mu, log_var = vae(batch)  # draws the reparameterisation noise
            loss = vae_loss(recon, vae.decoder.standardise(batch), mu, log_var)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return {"loss": loss.item()}

        names = {"loss": "VAE"}
        losses = _epochs(len(x), p.batch_size, p.vae_epochs, gen, step, names, "generative/vae")
    vae.eval()
    return vae, _fitted("generative/vae", vae.decoder, losses, start, compute)


def train_gan(
    data: np.ndarray,
    p: GenerativeParams,
    compute: Compute,
    learning_rate: float = GAN_LEARNING_RATE,
) -> GenerativeFit:
    """Alternating discriminator / generator steps (non-saturating loss) per mini-batch for
    `p.gan_epochs`, both at `learning_rate` (not `p.learning_rate`, the VAE's): two
    optimizers, so it has its own step rather than `mlfund.deep.training`'s."""
    start = time.perf_counter()
    x, mean, std = _stats(data)
    dev, latent_dim = compute.device, p.latent_dim
    with seeded(p.seed) as gen:
        generator = build_generator(latent_dim, p.hidden_size, mean, std).to(dev)
        critic = build_discriminator(p.hidden_size).to(dev)
        g_opt = torch.optim.Adam(generator.net.parameters(), lr=learning_rate, betas=GAN_BETAS)
        d_opt = torch.optim.Adam(critic.parameters(), lr=learning_rate, betas=GAN_BETAS)
        bce = nn.BCEWithLogitsLoss()
        real = generator.standardise(x.to(dev))

        def step(idx: torch.Tensor) -> dict[str, float]:
            batch = real[idx.to(dev)]
            n = len(batch)
            ones, zeros = torch.ones(n, 1, device=dev), torch.zeros(n, 1, device=dev)
            fake = generator.net(torch.randn(n, latent_dim, generator=gen).to(dev))
            d_loss = bce(critic(batch), ones) + bce(critic(fake.detach()), zeros)
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            fake = generator.net(torch.randn(n, latent_dim, generator=gen).to(dev))
            g_loss = bce(critic(fake), ones)  # non-saturating: fool the discriminator
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            return {"generator": g_loss.item(), "discriminator": d_loss.item()}

        names = {"generator": "generator", "discriminator": "discriminator"}
        losses = _epochs(len(real), p.batch_size, p.gan_epochs, gen, step, names, "generative/gan")
    generator.eval()
    return _fitted("generative/gan", generator, losses, start, compute)


def sample(model: nn.Module, n: int, latent_dim: int, seed: int, compute: Compute) -> np.ndarray:
    """n raw points (n, 2) from latents z ~ N(0, I) drawn with their own seed."""
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model.eval()(z.to(compute.device)).cpu().numpy()


def reconstruct(vae: VAE, data: np.ndarray, compute: Compute) -> np.ndarray:
    """Raw points (n, 2) decoded from the encoder means of `data` (no sampling noise)."""
    x = torch.from_numpy(np.asarray(data, dtype=np.float32)).to(compute.device)
    with torch.inference_mode():
        mu = vae.eval().fc_mu(vae.encoder(vae.decoder.standardise(x)))
        return vae.decoder(mu).cpu().numpy()


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) over the empirical distributions (V-statistics).

    Zero iff the samples' distributions match; in 1-D it equals scipy.stats.energy_distance.
    """
    x, y = np.asarray(x, float).reshape(len(x), -1), np.asarray(y, float).reshape(len(y), -1)

    def mean_dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).mean())

    value = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
    return float(np.sqrt(max(value, 0.0)))


def coverage(points: np.ndarray, centres: np.ndarray = CENTRES, radius: float = COVERAGE_RADIUS):
    """Share of points whose nearest centre is k and lies within `radius`, per centre k."""
    dist = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)  # (n, k)
    nearest = dist.argmin(1)
    inside = dist.min(1) <= radius
    return [float(np.mean(inside & (nearest == k))) for k in range(len(centres))]


def quality(points: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Energy distance to real samples and per-cluster coverage, as metric names."""
    shares = coverage(points)
    return {"energy_distance": energy_distance(points, real)} | {
        f"coverage_cluster_{k}": share for k, share in enumerate(shares)
    }
