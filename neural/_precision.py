"""Mixed precision of the neural estimators: the autocast context and the float16 gradient scaler.

``precision`` is one of ``"32"`` (float32 throughout), ``"bf16"`` (forwards
under :func:`torch.autocast` with bfloat16) or ``"16"`` (autocast with
float16, plus a :class:`torch.amp.GradScaler`, because float16 gradients
underflow without scaling). Weights, optimizer state and gradients stay
float32 in every case: autocast only runs the eligible operations (matrix
products, convolutions) in the lower precision. float16 is a CUDA feature;
on the CPU it is refused when training starts (bfloat16 needs no scaling
and is what CPUs with AVX512-BF16 / AMX accelerate).
"""

import contextlib

import torch

__all__ = ["PRECISIONS", "check_precision", "autocast", "make_grad_scaler"]

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def check_precision(precision, device):
    """Raise a ``ValueError`` unless ``precision`` can train on ``device``.

    Parameters
    ----------
    precision : {"32", "bf16", "16"}
        The estimator's ``precision``.
    device : torch.device
        The training device.

    Raises
    ------
    ValueError
        For float16 off CUDA, or bfloat16 on a GPU without bfloat16 support.
    """
    if precision == "16" and device.type != "cuda":
        raise ValueError(
            f"precision='16' (float16 autocast with gradient scaling) needs a CUDA device; the "
            f"estimator trains on {device}. On the CPU use precision='bf16' (bfloat16, no "
            "scaling needed) or precision='32'."
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"precision='bf16' but the GPU {torch.cuda.get_device_name(device)} does not support "
            "bfloat16; use precision='16' (float16 with gradient scaling) or '32'."
        )


def autocast(precision, device):
    """The context of a forward pass at ``precision`` on ``device``.

    Parameters
    ----------
    precision : {"32", "bf16", "16"}
        The estimator's ``precision``.
    device : torch.device
        Where the forward runs.

    Returns
    -------
    context : context manager
        :func:`torch.autocast` with the precision's dtype; a no-op for
        ``"32"``, and for ``"16"`` off CUDA (a model trained in float16 on a
        GPU and loaded on the CPU predicts in float32).
    """
    dtype = PRECISIONS[precision]
    if dtype is None or (dtype is torch.float16 and device.type != "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_grad_scaler(precision, device, state=None):
    """The gradient scaler of a fit: float16 on CUDA only, else None.

    Parameters
    ----------
    precision : {"32", "bf16", "16"}
        The estimator's ``precision``.
    device : torch.device
        The training device.
    state : dict or None, default=None
        A saved :meth:`torch.amp.GradScaler.state_dict` to continue from.

    Returns
    -------
    scaler : torch.amp.GradScaler or None
        The scaler, None when gradients need no scaling.
    """
    if precision != "16" or device.type != "cuda":
        return None
    scaler = torch.amp.GradScaler(device.type)
    if state:
        scaler.load_state_dict(state)
    return scaler
