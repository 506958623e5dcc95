"""GMM resampling (the prior's draw is SplitVAE.generate, tested in test_model.py)."""

import numpy as np
import pytest

from split_vae import SplitVAE
from split_vae.sampling import fit_gmm, gmm_generate, sample_gmm


@pytest.fixture(scope="module")
def model():
    return SplitVAE.from_preset("digits", seed=0)


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    z = np.concatenate([c + 0.3 * rng.standard_normal((200, 3)) for c in centres])
    return z, centres


def test_fit_gmm_shapes_and_settings(clusters):
    z, _ = clusters
    gmm = fit_gmm(z, 3, seed=0)
    assert gmm.means_.shape == (3, 3)
    assert gmm.covariances_.shape == (3, 3, 3)  # full covariance
    assert gmm.covariance_type == "full" and gmm.max_iter == 200


def test_fit_equals_sklearn_fit(clusters):
    # fit_gmm shows a progress bar of the EM iterations: the result must be
    # sklearn's own fit(max_iter=200).
    from sklearn.mixture import GaussianMixture

    z, _ = clusters
    z = z + np.random.default_rng(9).standard_normal(z.shape)  # slower convergence
    ours = fit_gmm(z, 4, seed=3, progress=False)
    ref = GaussianMixture(4, covariance_type="full", max_iter=200, random_state=3).fit(z)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
    assert ours.n_iter_ > 2


def test_fit_costs_what_sklearns_fit_costs_and_its_bar_counts_iterations(clusters,
                                                                      monkeypatch):
    # As many E-steps as a plain sklearn fit (one per EM iteration and a final
    # one): fitting one warm-started iteration per call doubled them, ~30% of
    # the time. The bar advances once per iteration.
    from sklearn.mixture import GaussianMixture

    from split_vae import sampling

    z, _ = clusters
    z = z + np.random.default_rng(9).standard_normal(z.shape)
    calls, bars = [], []
    e_step = GaussianMixture._e_step
    monkeypatch.setattr(GaussianMixture, "_e_step",
                        lambda self, X, **kw: calls.append(1) or e_step(self, X, **kw))

    class Bar(sampling.tqdm):
        def close(self):
            bars.append(self.n)
            super().close()

    monkeypatch.setattr(sampling, "tqdm", Bar)
    ours = fit_gmm(z, 4, seed=3)
    ours_calls = len(calls)
    calls.clear()
    ref = GaussianMixture(4, covariance_type="full", max_iter=200, random_state=3).fit(z)
    assert ours_calls == len(calls) == ref.n_iter_ + 1
    assert bars and set(bars) == {ours.n_iter_} and ours.n_iter_ > 2


def test_gmm_recovers_clusters_and_samples_follow_them(clusters):
    z, centres = clusters
    gmm = fit_gmm(z, 3, seed=0)
    # each true centre has a fitted mean close to it
    dist = np.linalg.norm(gmm.means_[:, None] - centres[None], axis=-1)
    assert dist.min(axis=0).max() < 0.2
    s = sample_gmm(gmm, 3000, seed=1)
    assert s.shape == (3000, 3) and s.dtype == np.float32
    # every sample is near one of the centres, and all three are used
    nearest = np.linalg.norm(s[:, None] - centres[None], axis=-1).argmin(axis=1)
    assert np.bincount(nearest, minlength=3).min() > 800
    assert np.abs(s.mean(0) - centres.mean(0)).max() < 0.3


def test_samples_are_shuffled_so_halves_are_fair(clusters):
    z, centres = clusters
    s = sample_gmm(fit_gmm(z, 3, seed=0), 600, seed=0)
    nearest = np.linalg.norm(s[:, None] - centres[None], axis=-1).argmin(axis=1)
    first, second = np.bincount(nearest[:300], minlength=3), np.bincount(nearest[300:],
                                                                         minlength=3)
    assert first.min() > 60 and second.min() > 60


def test_reproducible_under_seed(clusters):
    z, _ = clusters
    a, b = fit_gmm(z, 3, seed=5), fit_gmm(z, 3, seed=5)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(sample_gmm(a, 50, seed=2), sample_gmm(b, 50, seed=2))
    assert not np.array_equal(sample_gmm(a, 50, seed=2), sample_gmm(a, 50, seed=3))


def test_gmm_bad_input():
    with pytest.raises(ValueError, match="cannot fit 10"):
        fit_gmm(np.zeros((5, 2)), 10)
    with pytest.raises(ValueError, match="NaN"):
        fit_gmm(np.full((20, 2), np.nan), 2)
    with pytest.raises(ValueError, match="shape"):
        fit_gmm(np.zeros(20), 2)
    with pytest.raises(ValueError, match="positive integer"):
        fit_gmm(np.zeros((20, 2)), 0)
    with pytest.raises(ValueError, match="non-negative"):
        sample_gmm(fit_gmm(np.random.default_rng(0).random((20, 2)), 1), -1)


def test_gmm_generate_through_the_model(model):
    images = np.random.default_rng(0).random((40, 16, 16, 1)).astype("float32")
    out = gmm_generate(model, images, n=6, n_components=3, seed=0)
    h, w, c = model.image_shape
    assert out["z"].shape == (6, model.latent_dim)
    assert out["sigma"].shape == (6, h, w, 1)
    for k in ("x1", "x2", "x_hat"):
        assert out[k].shape == (6, h, w, c)
    # the images are the decoded z, composed as the paper says
    np.testing.assert_allclose(model.decode(out["z"])["x_hat"], out["x_hat"], atol=1e-6)
    np.testing.assert_allclose(
        out["x_hat"], out["sigma"] * out["x1"] + (1 - out["sigma"]) * out["x2"], atol=1e-5)
    # the mixture was fitted on z_mean of the images
    z_mean, _ = model.encode(images)
    np.testing.assert_allclose(out["gmm"].weights_ @ out["gmm"].means_,
                               z_mean.mean(0), atol=1e-3)
    again = gmm_generate(model, images, n=6, n_components=3, seed=0)
    np.testing.assert_array_equal(out["z"], again["z"])
    np.testing.assert_allclose(out["x_hat"], again["x_hat"], atol=1e-6)
    with pytest.raises(ValueError, match="images"):
        gmm_generate(model, None, n=2)
