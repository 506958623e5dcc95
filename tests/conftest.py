import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

import helpers  # noqa: E402


@pytest.fixture
def config():
    """A tiny split configuration (helpers.tiny_config)."""
    return helpers.tiny_config()


@pytest.fixture
def images():
    """64 tiny 16x16x1 images in [0, 1] (helpers.tiny_images)."""
    return helpers.tiny_images(64)


@pytest.fixture
def extractor():
    """A small random conv-net extractor of 8x8x3 images (helpers.small_extractor)."""
    return helpers.small_extractor()


@pytest.fixture
def cli():
    """Runs `python -m split_vae ARGS` in a subprocess (helpers.run_cli)."""
    return helpers.run_cli
