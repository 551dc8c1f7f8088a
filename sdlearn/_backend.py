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
    if module.startswith("array_api_strict"):
        import array_api_strict

        array = array_api_strict.asarray(array, device=array_api_strict.Device("CPU_DEVICE"))
    try:
        return np.asarray(array)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(array_api_compat.to_device(array, "cpu"))


SQUARED_NORM_BLOCK = 4096  # rows per block of squared_norm in namespaces other than NumPy


def squared_norm(A, xp, block_rows=SQUARED_NORM_BLOCK):
    """Squared Frobenius norm of a dense array or a SciPy sparse matrix, as a Python float.

    Never allocates a full-size temporary: sparse matrices use their stored values (duplicates
    summed first), NumPy arrays ``vdot``, other namespaces row blocks.
    """
    if sp.issparse(A):
        if not getattr(A, "has_canonical_format", True):
            A = A.copy()
            A.sum_duplicates()
        return float(A.data @ A.data)
    if isinstance(A, np.ndarray):
        return float(np.vdot(A, A))
    total = 0.0
    for start in range(0, A.shape[0], block_rows):
        block = A[start:min(start + block_rows, A.shape[0]), ...]
        total += float(xp.sum(block * block))
    return total


def check_same_namespace(X, estimator, *, attribute, method):
    """Raise if ``X`` is not in the namespace and on the device of a fitted attribute.

    Only active with ``array_api_dispatch``; NumPy arrays, array-likes and SciPy sparse
    matrices are all compatible with an estimator fitted on NumPy.
    """
    if not sklearn.get_config().get("array_api_dispatch", False):
        return
    fitted = getattr(estimator, attribute)
    fitted_xp, fitted_device = get_namespace(fitted), device_of(fitted)
    is_array = sp.issparse(X) or array_api_compat.is_array_api_obj(X)
    X_xp = get_namespace(X) if is_array else array_api_compat.numpy
    if is_numpy_namespace(fitted_xp) and is_numpy_namespace(X_xp):
        return
    X_device = device_of(X) if is_array else None
    if X_xp.__name__ == fitted_xp.__name__ and X_device == fitted_device:
        return
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the same namespace and the "
        f"same device as those passed to fit(): fitted on {fitted_xp.__name__} ({fitted_device}), got "
        f"{X_xp.__name__} ({X_device}). Convert X, or refit on X's namespace and device."
    )
