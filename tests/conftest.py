import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

import helpers  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # @pytest.mark.fashion_mnist: the test reads Debian's Fashion-MNIST; it
    # skips where the data is absent, and fails there under
    # SPLIT_VAE_REQUIRE_FASHION_MNIST=1 (helpers.require_fashion_mnist).
    if item.get_closest_marker("fashion_mnist"):
        helpers.require_fashion_mnist()
