"""VAE and GAN on the two 2-D Gaussian clusters: the sample-quality measures against scipy
and brute force, CPU determinism, and `run` with short training: both models cover both
clusters and come close to the real data, the VAE's loss falls, the samplers rebuild."""

from __future__ import annotations

from itertools import product

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats
import torch

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.device import Compute
from mlfund.deep.predictor import build
from mlfund.families.generative import model as gen
from tests.conftest import FrameInputs

CPU = Compute(torch.device("cpu"), "fp32")
FAMILY = registry.get("generative")
MIN_COVERAGE = 0.3  # the target for each cluster and each model
# A quarter of the default epochs (~5 s). Over seeds 0, 1, 7 and 42 this gave energy
# distances 0.21-0.26 (VAE) and 0.30-0.49 (GAN), coverage 0.36-0.49, a final VAE loss
# 0.14-0.15 times its first; two real samples are 0.05-0.07 apart.
QUICK = {"vae_epochs": 50, "gan_epochs": 80}


@pytest.fixture(scope="module")
def result(params: Params):
    result = FAMILY.run(params.generative.model_copy(update=QUICK), FrameInputs(), CPU)
    yield result
    for figure in result.figures.values():
        plt.close(figure)


def test_both_models_cover_both_clusters_and_approach_the_real_baseline(result):
    metrics = result.metrics
    baseline = metrics["real_vs_real"]["energy_distance"]
    for model in ("vae", "gan"):
        q = metrics[model]
        assert q["coverage_cluster_0"] >= MIN_COVERAGE and q["coverage_cluster_1"] >= MIN_COVERAGE
        assert baseline < q["energy_distance"] < 0.6, model


def test_the_fixed_vae_loss_falls_instead_of_staying_flat(result):
    losses = result.runs[0].history["loss"]
    assert len(losses) == QUICK["vae_epochs"] and np.isfinite(losses).all()
    assert losses[-1] < 0.25 * losses[0]  # the curriculum's only loses 1.5 %
    assert min(losses[-10:]) < min(losses[:10])


def test_the_vae_reconstructs_in_raw_units(result, params: Params):
    """The decoder un-standardises: reconstructions land near the training points."""
    p = params.generative
    data = gen.make_clusters(p.n_samples, p.seed)
    reconstruction = result.figures["vae_gan_samples"].axes[1].collections[0].get_offsets()
    assert np.median(np.linalg.norm(reconstruction - data, axis=1)) < 0.5


def test_run_gives_a_run_per_model_and_a_comparison_run(result, params: Params):
    vae, gan, comparison = result.runs
    assert [r.name for r in result.runs] == ["vae", "gan", "comparison"]
    assert set(result.metrics) == {"vae", "gan", "real_vs_real"}
    assert set(vae.history) == {"loss"}
    assert set(gan.history) == {"generator_loss", "discriminator_loss"}
    assert len(gan.history["generator_loss"]) == QUICK["gan_epochs"]
    tables = result.plots  # reports/plots/generative/history_<model>.csv for `dvc plots`
    assert set(tables) == {"history_vae", "history_gan"}
    assert list(tables["history_gan"].columns) == ["epoch", "generator_loss", "discriminator_loss"]
    assert tables["history_vae"]["loss"].tolist() == vae.history["loss"]
    assert tables["history_vae"]["epoch"].tolist() == list(range(QUICK["vae_epochs"]))
    assert gan.metrics["final_loss"] == gan.history["generator_loss"][-1]
    assert gan.tags["gan_learning_rate"] == str(gen.GAN_LEARNING_RATE)
    assert vae.tags["device"] == gan.tags["device"] == "cpu"
    assert comparison.model is None and comparison.figures == ["vae_gan_samples"]
    assert set(comparison.metrics) == {
        f"{k}_energy_distance" for k in ("vae", "gan", "real_vs_real")
    }
    axes = result.figures["vae_gan_samples"].axes
    assert len(axes) == 6
    vae_quality = f"{result.metrics['vae']['energy_distance']:.3f}"
    assert "VAE samples" in axes[2].get_title() and vae_quality in axes[2].get_title()
    assert len(axes[4].lines[0].get_ydata()) == QUICK["vae_epochs"]
    legend = {t.get_text() for t in axes[5].get_legend().get_texts()}
    assert legend >= {"generator", "discriminator"}


def test_the_samplers_rebuild_from_their_builder(result, params: Params):
    p = params.generative
    for run in result.runs[:2]:
        saved = run.model
        assert not saved.scored  # latents in, points out: not a split table's model
        assert saved.example.shape == (5, p.latent_dim)
        rebuilt = build(saved.builder, saved.config)
        rebuilt.load_state_dict(saved.estimator.state_dict())  # weights, mean and std
        np.testing.assert_array_equal(
            gen.sample(rebuilt, 50, p.latent_dim, 0, CPU),
            gen.sample(saved.estimator, 50, p.latent_dim, 0, CPU),
        )


def test_training_is_deterministic_on_cpu(params: Params):
    data = gen.make_clusters(200, 0)
    update = {"hidden_size": 16, "vae_epochs": 3, "gan_epochs": 3, "seed": 3}
    p = params.generative.model_copy(update=update)
    runs = [gen.train_vae(data, p, CPU)[1] for _ in range(2)]
    assert runs[0].losses == runs[1].losses
    gans = [gen.train_gan(data, p, CPU) for _ in range(2)]
    assert gans[0].losses == gans[1].losses
    first, second = (gen.sample(g.model, 50, 2, 1, CPU) for g in gans)
    np.testing.assert_array_equal(first, second)


def test_an_untrained_generator_is_far_from_the_data(params: Params):
    """The energy distance measures learning: at init it is several times the trained one."""
    p = params.generative
    reference = gen.make_clusters(p.n_generated, p.seed + 1)
    untrained = gen.build_sampler("gan", p.latent_dim, p.hidden_size)
    points = gen.sample(untrained, p.n_generated, p.latent_dim, 0, CPU)
    assert gen.energy_distance(points, reference) > 1.0


def test_a_non_finite_loss_names_the_key_and_returns_no_model(params: Params):
    section = params.generative.model_copy(
        update={"learning_rate": 1e30, "vae_epochs": 3, "gan_epochs": 3, "n_samples": 200}
    )
    with pytest.raises(NonFiniteLossError) as caught:
        FAMILY.run(section, FrameInputs(), CPU)
    message = str(caught.value)
    assert message.startswith("generative: VAE loss became")
    assert "generative.learning_rate is 1e+30" in message


def test_clusters_are_seeded_and_shaped_as_the_curriculum():
    data = gen.make_clusters(1000, 42)
    assert data.shape == (1000, 2) and data.dtype == np.float32
    np.testing.assert_array_equal(data, gen.make_clusters(1000, 42))
    assert not np.array_equal(data, gen.make_clusters(1000, 43))
    np.testing.assert_allclose(data[:500].mean(0), [2, 2], atol=0.1)
    np.testing.assert_allclose(data[500:].mean(0), [-2, -2], atol=0.1)
    np.testing.assert_allclose(data[:500].var(0), [0.5, 0.5], atol=0.1)


def test_energy_distance_matches_scipy_in_1d_and_brute_force_in_2d():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.5, 1.5, 200)
    assert gen.energy_distance(a, b) == pytest.approx(scipy.stats.energy_distance(a, b))
    x, y = rng.normal(size=(30, 2)), rng.normal(1, 1, size=(20, 2))

    def mean(p, q):
        return np.mean([np.linalg.norm(u - v) for u, v in product(p, q)])

    brute = np.sqrt(2 * mean(x, y) - mean(x, x) - mean(y, y))
    assert gen.energy_distance(x, y) == pytest.approx(brute)
    assert gen.energy_distance(x, x) == pytest.approx(0.0, abs=1e-7)


def test_coverage_counts_points_near_each_centre():
    points = np.array([[2.0, 2.0], [2.5, 1.5], [-2.0, -2.0], [0.0, 0.0], [9.0, 9.0]])
    assert gen.coverage(points) == [0.4, 0.2]  # (0, 0) and (9, 9) are near neither
    one_mode = gen.make_clusters(1000, 1)[:500]
    assert gen.coverage(one_mode)[1] == 0.0  # a collapsed generator is caught
