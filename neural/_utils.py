"""Small helpers shared by the neural estimators: devices, inputs, parameters."""

import json
import numbers

import numpy as np
import torch

__all__ = ["resolve_device", "to_numpy", "check_option", "encode_params", "decode_params"]


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a torch device.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA when it is available, else the CPU.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        For an unknown device name or CUDA requested where it is not available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available here; use device='cpu' or 'auto'."
            )
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}.")


def to_numpy(a):
    """Return ``a`` as something NumPy accepts (torch tensors go to host memory).

    Parameters
    ----------
    a : array-like or torch.Tensor or None
        Input data.

    Returns
    -------
    a : array-like or None
        ``a`` unchanged unless it is a tensor.
    """
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return a


def check_option(name, value, options):
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is in ``options``.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : object
        Value to check.
    options : sequence of str
        Allowed values.
    """
    if not isinstance(value, str) or value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}.")


def _encode(value):
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        # optimizers of torch.optim by name; a custom class cannot be saved as JSON
        if getattr(torch.optim, value.__name__, None) is value:
            return {"__optimizer__": value.__name__}
        raise TypeError(f"optimizer class {value.__qualname__} outside torch.optim")
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return value
    raise TypeError(type(value).__name__)


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if set(value) == {"__optimizer__"}:
            cls = getattr(torch.optim, str(value["__optimizer__"]), None)
            if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
                raise ValueError(f"unknown optimizer {value['__optimizer__']!r}")
            return cls
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode_params(params):
    """Serialise a parameter dict to JSON, keeping tuples as tuples.

    Parameters
    ----------
    params : dict
        Values made of None, bool, numbers, str, lists, tuples and dicts.

    Returns
    -------
    text : str
        JSON text.

    Raises
    ------
    TypeError
        If a value is not plain data (for example a module or a callable).
    """
    out = {}
    for key, value in params.items():
        try:
            out[key] = _encode(value)
        except TypeError as exc:
            raise TypeError(
                f"parameter {key}={value!r} holds a {exc} that cannot be saved as JSON; "
                "save() needs plain parameters (str, numbers, tuples); pickle the "
                "estimator instead."
            ) from None
    return json.dumps(out)


def decode_params(text):
    """Inverse of :func:`encode_params`.

    Parameters
    ----------
    text : str
        JSON text written by :func:`encode_params`.

    Returns
    -------
    params : dict
    """
    return _decode(json.loads(text))
