import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

import split_vae  # noqa: E402,F401  (first: TensorFlow then loads without its start-up lines)
import helpers  # noqa: E402


@pytest.fixture(autouse=True)
def _pooled_models_back():
    """Every model a test took from helpers.POOL goes back after it."""
    yield
    helpers.POOL.release()


# The files whose tests take longest on 2 cores, started first: under
# `-n 2 --dist loadfile` a long file that starts last keeps one process busy
# while the other has nothing left to do.
LONGEST_FIRST = ("test_cli.py", "test_multiworker.py", "test_training.py",
                 "test_mixed_precision.py", "test_variants.py", "test_components.py",
                 "test_reproduce.py",
                 "test_fashion_mnist_study.py", "test_gpu_check.py", "test_import.py",
                 "test_multiprocess_jax.py", "test_monitor.py", "test_presets.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable otherwise


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # @pytest.mark.fashion_mnist: the test reads Debian's Fashion-MNIST; it
    # skips where the data is absent, and fails there under
    # SPLIT_VAE_REQUIRE_FASHION_MNIST=1 (helpers.require_fashion_mnist).
    if item.get_closest_marker("fashion_mnist"):
        helpers.require_fashion_mnist()
