"""Test-session set-up shared by the whole suite.

* scikit-learn's array-API checks need ``SCIPY_ARRAY_API=1`` before SciPy is imported; setting
  it here (the first project file pytest loads) lets the common checks exercise
  array_api_strict and torch on CPU. It changes nothing for plain NumPy input.
* Tests run on small matrices in ``pytest -n 2`` workers on 2 cores: multi-threaded BLAS and
  torch would only oversubscribe the cores (spinning threads made some checks 100x slower),
  so each worker uses one thread.
"""

import importlib.util
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")


def pytest_configure(config):
    from threadpoolctl import threadpool_limits

    config._sdlearn_thread_limit = threadpool_limits(limits=1)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
