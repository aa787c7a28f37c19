"""VAE and GAN on the two 2-D Gaussian clusters: the sample-quality measures against scipy
and brute force, the issue's quality targets with the default params, CPU determinism,
the six-panel figure, and the stage end to end with a real MLflow store."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

import stages.common
import stages.train_generative
from mlfund.config import Params
from mlfund.deep import generative as gen
from mlfund.deep.device import Compute
from mlfund.deep.generative_figures import GenerativePanels, six_panel_figure

CPU = Compute(torch.device("cpu"), "fp32")
MIN_COVERAGE = 0.3  # the target for each cluster and each model


@pytest.fixture(autouse=True, scope="module")  # before the module's trained models
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _kwargs(params: Params, **changes) -> dict:
    p = params.generative.model_copy(update=changes)
    return {
        "hidden": p.hidden_size,
        "latent_dim": p.latent_dim,
        "batch_size": p.batch_size,
        "seed": p.seed,
        "compute": CPU,
    }


@pytest.fixture(scope="module")
def trained(params: Params):
    p = params.generative
    data = gen.make_clusters(p.n_samples, p.seed)
    vae, vae_fit = gen.train_vae(
        data, epochs=p.vae_epochs, learning_rate=p.learning_rate, **_kwargs(params)
    )
    gan_fit = gen.train_gan(data, epochs=p.gan_epochs, **_kwargs(params))
    return data, vae, vae_fit, gan_fit


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


def test_the_fixed_vae_loss_falls_instead_of_staying_flat(trained):
    losses = trained[2].losses["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.25 * losses[0]  # the curriculum's only loses 1.5 %
    assert min(losses[-20:]) < min(losses[:20])


def test_both_models_cover_both_clusters_and_approach_the_real_baseline(params, trained):
    p = params.generative
    data, vae, vae_fit, gan_fit = trained
    reference = gen.make_clusters(p.n_generated, p.seed + 1)
    baseline = gen.energy_distance(gen.make_clusters(p.n_generated, p.seed + 2), reference)
    for fit in (vae_fit, gan_fit):
        points = gen.sample(fit.model, p.n_generated, p.latent_dim, p.seed + 3, CPU)
        q = gen.quality(points, reference)
        assert q["coverage_cluster_0"] >= MIN_COVERAGE and q["coverage_cluster_1"] >= MIN_COVERAGE
        assert baseline < q["energy_distance"] < 0.6
    # The sampler speaks raw units: reconstructions land near the training points.
    recon = gen.reconstruct(vae, data, CPU)
    assert np.median(np.linalg.norm(recon - data, axis=1)) < 0.5
    # Untrained, the generator is far from the data: the distance measures learning.
    untrained = gen.build_generator(p.latent_dim, p.hidden_size, torch.zeros(2), torch.ones(2))
    points = gen.sample(untrained, p.n_generated, p.latent_dim, 0, CPU)
    assert gen.energy_distance(points, reference) > 1.0


def test_training_is_deterministic_on_cpu(params: Params):
    data = gen.make_clusters(200, 0)
    runs = [
        gen.train_vae(data, epochs=3, learning_rate=1e-3, **_kwargs(params))[1] for _ in range(2)
    ]
    assert runs[0].losses == runs[1].losses
    gans = [gen.train_gan(data, epochs=3, **_kwargs(params)) for _ in range(2)]
    assert gans[0].losses == gans[1].losses
    first, second = (gen.sample(g.model, 50, 2, 1, CPU) for g in gans)
    np.testing.assert_array_equal(first, second)


def test_the_six_panel_figure(trained):
    data, vae, vae_fit, gan_fit = trained
    q = {"energy_distance": 0.1, "coverage_cluster_0": 0.4, "coverage_cluster_1": 0.45}
    fig = six_panel_figure(
        GenerativePanels(
            data,
            gen.reconstruct(vae, data, CPU),
            gen.sample(vae_fit.model, 100, 2, 0, CPU),
            gen.sample(gan_fit.model, 100, 2, 0, CPU),
            vae_fit.losses["loss"],
            gan_fit.losses,
            {"vae": q, "gan": q},
            0.05,
        )
    )
    axes = fig.axes
    assert len(axes) == 6
    assert "VAE samples" in axes[2].get_title() and "0.100" in axes[2].get_title()
    assert len(axes[4].lines[0].get_ydata()) == len(vae_fit.losses["loss"])
    assert {t.get_text() for t in axes[5].get_legend().get_texts()} >= {
        "generator",
        "discriminator",
    }


def test_the_stage_end_to_end(params: Params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A few epochs, logged to a real MLflow store in tmp_path."""
    from mlflow import MlflowClient

    from mlfund.modelstore import read_manifest
    from mlfund.tracking import Tracker, tracking_uri

    monkeypatch.setattr(stages.common, "MODELS", tmp_path / "models")
    monkeypatch.setattr(stages.common, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(
        stages.train_generative, "tracker", lambda family: Tracker(tmp_path, family)
    )
    quick = params.model_copy(
        update={
            "generative": params.generative.model_copy(
                update={"vae_epochs": 2, "gan_epochs": 3, "n_samples": 200, "n_generated": 100}
            ),
            "compute": params.compute.model_copy(update={"device": "cpu", "threads": 1}),
        }
    )
    stages.train_generative.main(quick)

    assert read_manifest(tmp_path / "models" / "generative") == []
    written = json.loads((tmp_path / "reports" / "train" / "generative.json").read_text())
    metrics = written["metrics"]["generative"]
    for model in ("vae", "gan"):
        assert set(metrics[model]) >= {
            "energy_distance",
            "coverage_cluster_0",
            "coverage_cluster_1",
            "final_loss",
        }
    assert metrics["real_vs_real"]["energy_distance"] > 0
    client = MlflowClient(tracking_uri(tmp_path))
    for model, key, epochs in (("vae", "loss", 2), ("gan", "generator_loss", 3)):
        run = client.get_run(written["runs"][model])
        assert run.data.tags["device"] == "cpu"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps == list(range(epochs))
        assert run.outputs.model_outputs  # the sampler was logged (pt2)
    assert (tmp_path / "reports" / "figures" / "generative" / "vae_gan_samples.png").exists()
