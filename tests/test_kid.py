"""Kernel Inception Distance (metrics.kid): the unbiased MMD^2, its subsets, its seed."""

import itertools

import numpy as np
import pytest

from split_vae.metrics import kernel_inception_distance
from split_vae.metrics.kid import kid_subset_size


def _exact_unbiased_mmd2(x, y):
    """Term by term, pair by pair: the textbook estimator (Gretton et al. 2012, eq. 3)."""
    m, d = x.shape

    def k(u, v):
        return (sum(ui * vi for ui, vi in zip(u, v)) / d + 1.0) ** 3

    pairs = [(i, j) for i, j in itertools.product(range(m), repeat=2) if i != j]
    xx = sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)
    yy = sum(k(y[i], y[j]) for i, j in pairs) / len(pairs)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_one_subset_holding_everything_is_the_exact_unbiased_mmd2():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    y = rng.normal(0.5, 1.5, size=(12, 5))
    mean, sd = kernel_inception_distance(x, y, subsets=1, subset_size=1000, seed=3)
    assert mean == pytest.approx(_exact_unbiased_mmd2(x, y), rel=1e-12)
    assert sd == 0.0


def test_same_distribution_can_go_negative_and_a_shift_is_positive():
    # Unbiased: around 0 for one distribution, so some estimates are negative
    # (an estimator keeping the diagonal never is).
    rng = np.random.default_rng(1)
    same = [kernel_inception_distance(rng.normal(size=(20, 4)), rng.normal(size=(20, 4)),
                                      subsets=1)[0] for _ in range(20)]
    assert min(same) < 0 < max(same)
    near = kernel_inception_distance(rng.normal(size=(200, 4)), rng.normal(0.3, size=(200, 4)))
    far = kernel_inception_distance(rng.normal(size=(200, 4)), rng.normal(1.0, size=(200, 4)))
    assert 0 < near[0] < far[0]


def test_subsets_are_reproducible_by_seed():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.2, size=(50, 8))
    first = kernel_inception_distance(a, b, subsets=10, subset_size=20, seed=7)
    assert kernel_inception_distance(a, b, subsets=10, subset_size=20, seed=7) == first
    other = kernel_inception_distance(a, b, subsets=10, subset_size=20, seed=8)
    assert other != first
    assert first[1] > 0  # subsets of 20 out of 50-60 differ


def test_subset_size_is_the_smaller_of_the_request_and_both_sets():
    assert kid_subset_size(999, 5000) == 999
    assert kid_subset_size(1000, 5000) == 1000
    assert kid_subset_size(1001, 5000) == 1000
    assert kid_subset_size(5000, 1001, 1001) == 1001
    # Sets of 12 and 15: subsets of 12, every sample of the smaller set each time.
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(15, 3))
    values = {kernel_inception_distance(x, y[:12], subsets=1, seed=s)[0] for s in range(3)}
    assert len({round(v, 12) for v in values}) == 1  # all 12 of each: same value


@pytest.mark.parametrize("a, b, kwargs, message", [
    (np.zeros((5, 3)), np.zeros((5, 4)), {}, "different dimensions: 3 and 4"),
    (np.zeros((1, 3)), np.zeros((5, 3)), {}, "features_a need at least 2 samples"),
    (np.zeros(5), np.zeros((5, 3)), {}, r"features_a must have shape \(N, d\)"),
    (np.zeros((5, 3)), np.full((5, 3), np.nan), {}, "features_b contain NaN"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"subsets": 0}, "subsets >= 1"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"subset_size": 1}, "subset_size >= 2"),
])
def test_bad_input_is_named(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(a, b, **kwargs)
