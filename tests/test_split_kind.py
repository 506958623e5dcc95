"""split_kind: syntactic (high-frequency sigma) vs semantic (sigma follows shapes).

Expectations come from Parseval's theorem on maps whose spectrum is known in
closed form, not from the code under test.
"""

import numpy as np
import pytest

from split_vae.split_kind import sigma_high_frequency_fraction, split_kind, split_kind_of_parts

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


# --- every constant pinned at 16, 32 and 64 pixels ---------------------------------------
# Inputs on each side of the cutoff, the threshold and min_variance, built so that their
# spectrum is known in closed form. The sizes of the paper's images (32) and of the digits
# (16), and a larger one.
SIZES = (16, 32, 64)


def grid(n):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return i, j, (-1.0) ** (i + j)          # rows, columns, the +-1 checkerboard


def rectangle(n):
    """A digit-sized box: rows n/8..7n/8, columns n/4..3n/4 (p = 3/8 of the image).
    Its sides are even, so it holds as many +1 as -1 pixels of the checkerboard."""
    i, j, _ = grid(n)
    return (i >= n // 8) & (i < 7 * n // 8) & (j >= n // 4) & (j < 3 * n // 4)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("parts", [False, True])
def test_threshold_pinned_just_above_and_below(n, parts):
    # 0.5 + A*checkerboard + B*cos(2 pi j/n): the checkerboard's energy A^2 is all at
    # radius 0.71, the cosine's B^2/2 all at 1/n cycles/pixel (<= 1/16 < 0.25); they are
    # orthogonal, so the fraction is A^2 / (A^2 + B^2/2). With x1 = 1, x2 = 0 (w = 1) the
    # weighted measure must give the same.
    _, j, sign = grid(n)
    b = 0.2
    for fraction, kind in ((0.51, "syntactic"), (0.49, "semantic")):
        a = np.sqrt(fraction / (1 - fraction) * b * b / 2)
        sigma = 0.5 + a * sign + b * np.cos(2 * np.pi * j / n)
        kw = dict(x1=np.ones_like(sigma), x2=np.zeros_like(sigma)) if parts else {}
        out = split_kind(sigma, **kw)
        assert out["high_frequency_fraction"] == pytest.approx(fraction, rel=1e-9)
        assert out["sigma_variance"] == pytest.approx(a * a + b * b / 2, rel=1e-9)
        assert out["kind"] == kind


@pytest.mark.parametrize("n", SIZES)
def test_cutoff_pinned_by_the_bins_next_to_it(n):
    # cos(2 pi k j/n) has all its energy at k/n cycles/pixel. k = n/4 sits on the cutoff
    # (0.25 is not above 0.25), k = n/4 + 1 just above; on the diagonal, (k, k)/n with
    # k = 3n/16 has radius 0.265 (above), (3n/16, 2n/16) radius 0.225 (below).
    i, j, _ = grid(n)
    q, e = n // 4, n // 16
    cases = [(np.cos(2 * np.pi * q * j / n), 0.0),
             (np.cos(2 * np.pi * (q + 1) * j / n), 1.0),
             (np.cos(2 * np.pi * 3 * e * (i + j) / n), 1.0),
             (np.cos(2 * np.pi * (3 * e * i + 2 * e * j) / n), 0.0)]
    for wave, fraction in cases:
        out = split_kind(0.5 + 0.3 * wave)
        assert out["high_frequency_fraction"] == pytest.approx(fraction, abs=1e-12)
        assert out["kind"] == ("syntactic" if fraction else "semantic")


@pytest.mark.parametrize("n", SIZES)
def test_min_variance_pinned_where_sigma_acts(n):
    # 0.5 + a*checkerboard has variance a^2. Inside the box x1 = 1, x2 = 0 (w = 1); outside
    # x1 = x2 = 0, so sigma's large checkerboard there (variance 0.09) must not count.
    _, _, sign = grid(n)
    box = rectangle(n)
    x1, x2 = box.astype(float), np.zeros((n, n))
    for var, kind in ((1.02e-4, "syntactic"), (0.98e-4, "none")):
        sigma = np.where(box, 0.5 + np.sqrt(var) * sign, 0.5 + 0.3 * sign)
        out = split_kind(sigma, x1=x1, x2=x2)
        assert out["sigma_variance"] == pytest.approx(var, rel=1e-9)
        assert out["kind"] == kind
        inside = np.where(box, sigma, 0.5)   # the plain measure, on a sigma flat outside
        assert split_kind(inside)["sigma_variance"] == pytest.approx(var * box.mean(), rel=1e-9)


@pytest.mark.parametrize("n", SIZES)
def test_checkerboard_in_a_digit_with_a_bright_background_is_syntactic(n):
    # The shipped digits model's case: sigma alternates on the digit (x1, x2 complementary
    # pixels of it) and is bright around it, where x1 = x2 = 0. Weighted by |x1 - x2| (1 on
    # the box, 0 outside) and centred on sigma's mean on the box (0.5: the box holds as
    # many +1 as -1), u is 0.25 * checkerboard * box: the same map as the plain measure
    # sees for a sigma at 0.5 outside the box, where the test above showed a box-masked
    # checkerboard keeps its energy high.
    _, _, sign = grid(n)
    box = rectangle(n)
    carrier = 0.5 + 0.25 * sign
    sigma = np.where(box, carrier, 0.9)
    x1, x2 = box * (sign > 0), box * (sign < 0)
    weighted = split_kind(sigma, x1=x1, x2=x2)
    no_envelope = split_kind(np.where(box, carrier, 0.5))
    assert weighted["high_frequency_fraction"] == pytest.approx(
        no_envelope["high_frequency_fraction"], rel=1e-9)
    assert weighted["kind"] == "syntactic" and weighted["high_frequency_fraction"] > 0.9
    # Unweighted, the envelope (a step of 0.4 over the 5/8 of the image outside the box)
    # holds 3/8 * 5/8 * 0.16 = 0.0375 of mean square against the carrier's 3/8 * 0.0625 =
    # 0.0234, and almost all of it lies below the cutoff: the old verdict, semantic.
    plain = split_kind(sigma)
    assert plain["sigma_variance"] == pytest.approx(0.0375 + 0.0234375, rel=1e-9)
    assert plain["kind"] == "semantic"


def soft_disc(n, cy, cx, r):
    """A smooth shape scaled to the image: a disc of radius r*n, sigmoid edge of n/16 px."""
    i, j, _ = grid(n)
    d = np.sqrt((i - cy * n) ** 2 + (j - cx * n) ** 2)
    return 1 / (1 + np.exp((d - r * n) / (n / 16)))


@pytest.mark.parametrize("n", SIZES)
def test_smooth_contour_map_on_a_garment_is_semantic(n):
    # A Fashion-MNIST-like semantic split: x1 = 0, x2 the garment, sigma darker on a part
    # of it. A checkerboard where the garment is absent (x1 = x2 = 0) does nothing to
    # x_hat and must not count: the plain measure, which counts it, is fooled.
    _, _, sign = grid(n)
    garment = np.clip(1.1 * soft_disc(n, 0.5, 0.5, 0.3) - 0.1, 0, None)  # 0 off the garment
    sigma = 0.8 - 0.5 * soft_disc(n, 0.4, 0.55, 0.2)
    x1, x2 = np.zeros((n, n)), garment
    out = split_kind(sigma, x1=x1, x2=x2)
    assert out["kind"] == "semantic" and out["high_frequency_fraction"] < 0.05
    textured = np.where(garment > 0, sigma, 0.5 + 0.4 * sign)
    out_textured = split_kind(textured, x1=x1, x2=x2)
    assert out_textured["kind"] == "semantic"
    assert out_textured["high_frequency_fraction"] < 0.05
    assert split_kind(textured)["kind"] == "syntactic"


def test_sigma_where_x1_equals_x2_does_not_count():
    # Any change of sigma where x1 = x2 leaves every number as it was.
    rng = np.random.default_rng(0)
    box = rectangle(16)
    sigma, x1, x2 = rng.uniform(size=(3, 4, 16, 16))
    x2 = np.where(box, x2, x1)
    other = np.where(box, sigma, rng.uniform(size=(4, 16, 16)))
    a, b = split_kind(sigma, x1=x1, x2=x2), split_kind(other, x1=x1, x2=x2)
    assert a["high_frequency_fraction"] == pytest.approx(b["high_frequency_fraction"], rel=1e-12)
    assert a["sigma_variance"] == pytest.approx(b["sigma_variance"], rel=1e-12)
    # and x1 = x2 everywhere: sigma acts nowhere, no split
    assert split_kind(sigma, x1=x1, x2=x1)["kind"] == "none"


def test_colour_parts_weigh_sigma_by_the_length_of_x1_minus_x2():
    # One sigma acts on all C channels: d x_hat / d sigma is the vector x1 - x2, whose
    # length weighs sigma. Here x1 - x2 is (3, 4, 0) on the box's left half and (0, 0, 5)
    # on its right (length 5 on both; summed, 7 and 5) and 0 outside: the same numbers as
    # one channel with |x1 - x2| = 5 on the whole box, and (the fraction and the
    # variance being scale-free) as |x1 - x2| = 1 there.
    _, j, sign = grid(16)
    box = rectangle(16)
    sigma = np.where(box, 0.5 + 0.25 * sign + 0.2 * (j < 8), 0.9)[None, ..., None]
    x1 = np.zeros((1, 16, 16, 3))
    left = box & (j < 8)
    right = box & (j >= 8)
    x2 = np.stack([-3.0 * left, -4.0 * left, -5.0 * right], axis=-1)[None]
    colour = split_kind(sigma, x1=x1, x2=x2)
    grey = split_kind(sigma, x1=np.zeros((1, 16, 16, 1)), x2=-5.0 * box[None, ..., None])
    unit = split_kind(sigma, x1=np.zeros((16, 16)), x2=1.0 * box)
    for key in ("high_frequency_fraction", "sigma_variance"):
        assert colour[key] == pytest.approx(grey[key], rel=1e-12), key
        assert colour[key] == pytest.approx(unit[key], rel=1e-12), key
    assert colour["kind"] == grey["kind"]
    # one image (H, W, C) with one map, as from a single decode
    one = split_kind(sigma[0, ..., 0], x1=x1[0], x2=x2[0])
    assert one["high_frequency_fraction"] == pytest.approx(colour["high_frequency_fraction"])
    with pytest.raises(ValueError, match="x1 or x2 contains NaN"):
        split_kind(sigma, x1=x1, x2=np.full_like(x2, np.nan))


def test_an_rgb_model_reports_its_split_kind():
    # evaluate_model measures the kind on a colour model's reconstructions.
    from helpers import small_extractor, tiny_images, tiny_model
    from split_vae.evaluation import evaluate_model

    model = tiny_model(image_shape=(16, 16, 3), compile=False)
    images = tiny_images(8, (16, 16, 3))
    report, _ = evaluate_model(model, images, extractor=small_extractor(side=16),
                               n_samples=4, gmm_components=1, use_cache=False)
    assert report["split_kind"]["kind"] in ("syntactic", "semantic", "none")


def test_x1_and_x2_come_together_with_sigmas_shape():
    sigma = np.zeros((2, 16, 16, 1))
    with pytest.raises(ValueError, match="both"):
        split_kind(sigma, x1=sigma)
    with pytest.raises(ValueError, match="shape"):
        split_kind(sigma, x1=np.zeros((2, 8, 8, 1)), x2=np.zeros((2, 8, 8, 1)))
    assert split_kind_of_parts({"x_hat": sigma}) is None


def test_shipped_digits_model_is_syntactic():
    # docs/digits_generated.png: sigma a checkerboard and stripes, x1 and x2 complementary
    # pixels of each digit. The plain measure, which counts sigma's bright border where
    # x1 = x2 = 0, calls it semantic.
    from split_vae import SplitVAE, data

    parts = SplitVAE.from_pretrained("digits").reconstruct(
        data.load("digits", "test", as_numpy=True)[:32])
    out = split_kind_of_parts(parts)
    assert out["kind"] == "syntactic" and out["high_frequency_fraction"] > 0.6
    assert split_kind(parts["sigma"])["high_frequency_fraction"] < 0.4


def test_the_constant_removed_is_the_least_squares_fit_where_sigma_acts():
    # Left half: |x1 - x2| = 1 and sigma = 0.2; right half: |x1 - x2| = 2 and sigma = 0.7.
    # The constant c minimising sum w^2 (sigma - c)^2 is (0.2 + 4 * 0.7) / 5 = 0.6; what is
    # left, sum w^2 (sigma - c)^2 / sum w^2 = (0.16 + 4 * 0.01) * 128 / (5 * 128) = 0.04
    # (= 0.16 * 0.5^2, the step 0.5 of sigma between the halves).
    _, j, _ = grid(16)
    right = j >= 8
    sigma = np.where(right, 0.7, 0.2)
    x1, x2 = np.where(right, 2.0, 1.0), np.zeros((16, 16))
    out = split_kind(sigma, x1=x1, x2=x2)
    assert out["sigma_variance"] == pytest.approx(0.04, rel=1e-9)
