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


def _per_subset_reference(a, b, subsets, subset_size, seed):
    """The definition, subset by subset, with the independent pairwise MMD^2."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    values = [_exact_unbiased_mmd2(a[rng.choice(len(a), m, replace=False)],
                             b[rng.choice(len(b), m, replace=False)])
              for _ in range(subsets)]
    return np.mean(values), np.std(values)


@pytest.mark.parametrize("n_a, n_b, subset_size", [
    (30, 30, 30),   # every subset is both whole sets: one evaluation serves all
    (30, 30, 29),   # one row short of that: real subsets
    (40, 25, 20),   # unequal sets, subsets read from the kernel of every pair
])
def test_every_path_gives_the_definitions_numbers(n_a, n_b, subset_size):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n_a, 6)), rng.normal(0.2, size=(n_b, 6))
    mean, sd = kernel_inception_distance(a, b, subsets=7, subset_size=subset_size, seed=5)
    ref_mean, ref_sd = _per_subset_reference(a, b, 7, subset_size, 5)
    assert mean == pytest.approx(ref_mean, rel=1e-9, abs=1e-12)
    assert sd == pytest.approx(ref_sd, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("entries", [(40 + 25) ** 2, (40 + 25) ** 2 - 1])
def test_the_kernel_of_every_pair_is_used_up_to_its_size_limit(monkeypatch, entries):
    """FULL_KERNEL_ENTRIES decides between one kernel of every pair and a product
    per subset; both sides of the limit give the definition's numbers, and the
    limit itself is where the switch happens."""
    from split_vae.metrics import kid

    calls = []
    real = kid.polynomial_kernel
    monkeypatch.setattr(kid, "polynomial_kernel", lambda x, y: calls.append(len(x)) or real(x, y))
    monkeypatch.setattr(kid, "FULL_KERNEL_ENTRIES", entries)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(40, 6)), rng.normal(0.2, size=(25, 6))
    mean, _ = kernel_inception_distance(a, b, subsets=3, subset_size=20, seed=1)
    assert mean == pytest.approx(_per_subset_reference(a, b, 3, 20, 1)[0], rel=1e-9)
    if entries >= 65 ** 2:
        assert calls == [65]          # once, over both sets together
    else:
        assert calls == [20] * 9      # three products per subset
