"""The test harness's own promises: the `fashion_mnist` marker skips where the
data is absent, and fails there when CI requires the data."""

import keras
import numpy as np
import pytest

import conftest
import helpers
from split_vae import data


def test_present_data_neither_skips_nor_fails(tmp_path):
    helpers.require_fashion_mnist(str(tmp_path), environ={helpers.REQUIRE_FASHION_MNIST: "1"})
    helpers.require_fashion_mnist(str(tmp_path), environ={})


@pytest.mark.parametrize("value", [None, "0", ""])
def test_absent_data_skips_unless_required(tmp_path, value):
    environ = {} if value is None else {helpers.REQUIRE_FASHION_MNIST: value}
    with pytest.raises(pytest.skip.Exception, match="absent.*apt install dataset-fashion-mnist"):
        helpers.require_fashion_mnist(str(tmp_path / "absent"), environ=environ)


def test_absent_data_fails_when_required(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="absent but SPLIT_VAE_REQUIRE_FASHION_MNIST"):
        helpers.require_fashion_mnist(str(tmp_path / "absent"),
                                      environ={helpers.REQUIRE_FASHION_MNIST: "1"})


class _Item:
    def __init__(self, marked):
        self.marked = marked

    def get_closest_marker(self, name):
        return object() if self.marked and name == "fashion_mnist" else None


def test_the_marker_applies_the_condition(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "absent"))
    monkeypatch.delenv(helpers.REQUIRE_FASHION_MNIST, raising=False)
    conftest.pytest_runtest_setup(_Item(marked=False))  # unmarked tests are left alone
    with pytest.raises(pytest.skip.Exception):
        conftest.pytest_runtest_setup(_Item(marked=True))
    monkeypatch.setenv(helpers.REQUIRE_FASHION_MNIST, "1")
    with pytest.raises(pytest.fail.Exception):
        conftest.pytest_runtest_setup(_Item(marked=True))


def _train(model, images):
    """One epoch with the balance; everything it changes, as numpy."""
    from split_vae import GammaBalance

    history = model.fit(images, epochs=2, batch_size=16, verbose=0,
                        callbacks=[GammaBalance()]).history
    return history, [np.asarray(v) for v in model.variables], \
        [np.asarray(v) for v in model.optimizer.variables]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="only TensorFlow retraces a step with relaxed shapes")
def test_a_pooled_model_traced_for_another_input_is_not_reused():
    # Traced again for another batch size, the step's graph has relaxed shapes
    # and may round otherwise than a new model's: the pool drops that model.
    pool = helpers.ModelPool()
    images = helpers.tiny_images(32)
    first = pool.take(seed=3)
    first.fit(images, epochs=1, batch_size=16, verbose=0)
    pool.release()
    again = pool.take(seed=3)
    assert again is first                       # the same input: reused
    again.fit(images, epochs=1, batch_size=16, verbose=0)
    pool.release()
    again = pool.take(seed=3)
    assert again is first
    again.fit(images, epochs=1, batch_size=8, verbose=0)
    pool.release()
    assert pool.take(seed=3) is not first


def test_a_pooled_model_trains_bit_for_bit_as_a_new_one():
    # The pool (helpers.ModelPool) saves the tracing of a new model's training
    # step; it must not change what a test sees. A model used, dirtied and handed
    # out again trains exactly as tiny_model() of the same seed, twice over.
    images = helpers.tiny_images(48)
    pool = helpers.ModelPool()
    first = pool.take(seed=3)
    _train(first, images)
    first.gamma.assign(0.125)                      # dirty it more
    first.stop_training = True
    pool.release()
    for _ in range(2):
        again = pool.take(seed=3)
        assert again is first                      # reused, so the check means something
        got = _train(again, images)
        want = _train(helpers.tiny_model(seed=3), images)
        assert got[0] == want[0]
        for a, b in zip(got[1] + got[2], want[1] + want[2], strict=True):
            np.testing.assert_array_equal(a, b)
        pool.release()
    # Another seed: the same traced model, with that seed's weights; another
    # configuration: another model; a re-compiled one is not reused.
    other_seed = pool.take(seed=4)
    assert other_seed is first
    for a, b in zip(other_seed.variables, helpers.tiny_model(seed=4).variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert pool.take(seed=3, beta=2.0) is not first
    pool.release()
    taken = pool.take(seed=3)
    taken.compile()
    pool.release()
    assert pool.take(seed=3) is not taken
