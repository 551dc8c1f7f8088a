"""Shared settings of the neural tests: CPU threads, warnings, small data."""

import importlib.util
import os

import pytest

if importlib.util.find_spec("torch") is None:
    # torch is an optional extra: without it the neural tests are not collected
    collect_ignore_glob = ["test_*.py"]
else:
    import torch

    # tiny models gain nothing from intra-op threads, and spinning OpenMP threads
    # slow down badly when the 2 CI cores are shared (xdist workers, other suites)
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    # short training runs do not converge by design; the warning is tested on its own
    mark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
    for item in items:
        if "tests/neural" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(mark)


@pytest.fixture(scope="session")
def shapes_small():
    """400 train / 200 test synthetic 10-class images, 3 x 8 x 8."""
    from neural.datasets import make_shapes

    X, y = make_shapes(400, image_size=8, random_state=0)
    Xt, yt = make_shapes(200, image_size=8, random_state=1)
    return X, y, Xt, yt
