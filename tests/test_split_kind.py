"""split_kind: syntactic (high-frequency sigma) vs semantic (sigma follows shapes).

Expectations come from Parseval's theorem on maps whose spectrum is known in
closed form, not from the code under test.
"""

import numpy as np
import pytest

from split_vae.split_kind import sigma_high_frequency_fraction, split_kind

N = 32
ii, jj = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
CHECKER = ((ii + jj) % 2).astype("float32")          # 0/1 checkerboard
STRIPES = (ii % 2).astype("float32")                 # alternate rows


def blob(cy, cx, r):
    """A smooth garment-like map: a soft disc of radius r (sigmoid edge, 2 px)."""
    d = np.sqrt((ii - cy) ** 2 + (jj - cx) ** 2)
    return (1 / (1 + np.exp((d - r) / 2.0))).astype("float32")


def test_checkerboard_and_stripes_are_syntactic():
    # All the energy of a checkerboard is at (0.5, 0.5) cycles/pixel (radius
    # 0.71), of row stripes at (0.5, 0): both above the 0.25 cutoff.
    for pattern in (CHECKER, STRIPES):
        maps = np.stack([pattern, 1 - pattern, pattern])[..., None]
        out = split_kind(maps)
        assert out["kind"] == "syntactic"
        assert out["high_frequency_fraction"] == pytest.approx(1.0, abs=1e-12)
        # variance of a 0/1 pattern with half ones: 0.25 (Parseval check)
        assert out["sigma_variance"] == pytest.approx(0.25, rel=1e-12)


def test_smooth_contour_maps_are_semantic():
    maps = np.stack([blob(16, 16, 8), blob(12, 18, 6), blob(20, 14, 10)])
    out = split_kind(maps)
    assert out["kind"] == "semantic"
    # A soft disc with a 2-pixel edge keeps almost nothing above 0.25
    # cycles/pixel (the sigmoid edge's spectrum decays like exp(-2 pi^2 * 2 f)).
    assert out["high_frequency_fraction"] < 0.01


def test_fraction_of_a_known_mixture():
    # 0.25 * checkerboard(+-1) has mean square 0.0625, all above the cutoff;
    # 0.25 * cos(2 pi x / 32) has mean square 0.03125, all at 1/32 cycles/pixel.
    # The two are orthogonal, so the fraction is 0.0625 / 0.09375 = 2/3.
    sign = 1 - 2 * CHECKER
    sigma = 0.5 + 0.25 * sign + 0.25 * np.cos(2 * np.pi * jj / N)
    fraction, variance = sigma_high_frequency_fraction(sigma)
    assert fraction == pytest.approx(2 / 3, rel=1e-9)
    assert variance == pytest.approx(0.09375, rel=1e-9)
    # A threshold on either side of 2/3 flips the verdict.
    assert split_kind(sigma, threshold=0.6)["kind"] == "syntactic"
    assert split_kind(sigma, threshold=0.7)["kind"] == "semantic"


def test_checkerboard_inside_a_garment_mask():
    # The syntactic split of a real model alternates pixels inside the
    # garment only: still mostly high-frequency.
    mask = blob(16, 16, 10) > 0.5
    sigma = np.where(mask, CHECKER, 0.5)
    assert split_kind(sigma)["kind"] == "syntactic"


def test_constant_sigma_is_no_split():
    out = split_kind(np.full((4, N, N, 1), 0.3))
    assert out["kind"] == "none"
    assert out["sigma_variance"] == pytest.approx(0.0, abs=1e-20)
    assert out["sigma_mean"] == pytest.approx(0.3)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, N, N, 3)), "shape"),
    (np.zeros((N,)), "shape"),
    (np.full((1, N, N), np.nan), "NaN"),
])
def test_bad_sigma_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        split_kind(bad)
