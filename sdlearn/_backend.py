"""Array namespace helpers: one place where the solvers learn which library they run on.

The solvers are written against the Python array API standard. They receive the
namespace ``xp`` from :func:`get_namespace`, which follows scikit-learn's
``array_api_dispatch`` setting: with dispatch off (the default) everything runs
on NumPy; with dispatch on, CuPy or torch input is computed on its own device.
SciPy sparse matrices always run on NumPy.
"""

import numpy as np
import scipy.sparse as sp
import sklearn

try:
    import array_api_compat
    import array_api_compat.numpy
except ImportError:  # pragma: no cover - scikit-learn vendors a copy
    from sklearn.externals import array_api_compat
    from sklearn.externals.array_api_compat import numpy as _  # noqa: F401


def get_namespace(*arrays):
    """Return the array namespace of ``arrays``, honouring ``array_api_dispatch``.

    Parameters
    ----------
    *arrays : array-like or None
        Arrays to inspect; ``None`` entries and SciPy sparse matrices are ignored.

    Returns
    -------
    xp : module
        An array-API compatible namespace (``array_api_compat.numpy`` when
        dispatch is off or all inputs are NumPy / sparse).
    """
    dense = [a for a in arrays if a is not None and not sp.issparse(a)]
    if not sklearn.get_config().get("array_api_dispatch", False) or not dense:
        return array_api_compat.numpy
    return array_api_compat.array_namespace(*dense)


def is_numpy_namespace(xp):
    """Whether ``xp`` is NumPy (plain or wrapped by array-api-compat)."""
    return xp.__name__ in {"numpy", "array_api_compat.numpy"}


def device_of(array):
    """Device of ``array`` (``"cpu"`` for NumPy and SciPy sparse)."""
    if sp.issparse(array):
        return "cpu"
    return array_api_compat.device(array)


def to_numpy(array):
    """Copy ``array`` from any supported namespace to NumPy (sparse and ``None`` pass through)."""
    if array is None or isinstance(array, np.ndarray) or sp.issparse(array):
        return array
    module = type(array).__module__
    if module.startswith("cupy"):
        return array.get()
    if module.startswith("torch"):
        return array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(array_api_compat.to_device(array, "cpu"))


def squared_norm(A, xp):
    """Squared Frobenius norm of a dense array or a SciPy sparse matrix, as a Python float."""
    if sp.issparse(A):
        return float(A.multiply(A).sum())
    return float(xp.sum(A * A))
