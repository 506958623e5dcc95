"""The test harness's own promises: the `fashion_mnist` marker skips where the
data is absent, and fails there when CI requires the data."""

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
