"""Shared numpydoc fragments of the neural estimators, written once.

Every estimator's class docstring lists its own parameters, then the line
``{training_params}``; its Attributes section lists its own attributes, then
``{training_attributes}``. :func:`fill_docstring` replaces the two markers
with the fragments below, filling in each class's defaults (read from its
``__init__`` signature) and its own ``history_`` keys.
"""

import inspect
import textwrap

__all__ = ["fill_docstring", "TRAINING_PARAMS", "TRAINING_ATTRIBUTES"]

# name -> (type line, description); "{default}" is the class's default (repr)
TRAINING_PARAMS = {
    "max_iter": ("int", "Maximum number of epochs (passes over the training data) of ``fit``, "
                        "in its first phase; ``partial_fit`` runs one epoch."),
    "batch_size": ("int", "Minibatch size (clipped to the number of training samples). Under "
                          "torch.distributed it is the global minibatch, cut into one share per "
                          "process, so a fit on N processes equals the fit on one."),
    "solver": ("str or torch.optim.Optimizer subclass",
               "The optimizer: any class of :mod:`torch.optim` or its name, case-insensitive "
               "(``\"adam\"``, ``\"adamw\"``, ``\"sgd\"``, ``\"rmsprop\"``, ...). It gets "
               "``lr=learning_rate_init`` and ``weight_decay``; SGD also ``momentum`` and "
               "``nesterov``; ``optimizer_kwargs`` adds or overrides arguments."),
    "optimizer_kwargs": ("dict or None",
                         "Further keyword arguments of the optimizer, e.g. "
                         "``{\"betas\": (0.9, 0.95)}``."),
    "learning_rate_init": ("float", "Learning rate at the start of every phase of ``fit`` and "
                                    "in ``partial_fit``."),
    "learning_rate": ("{\"constant\", \"cosine\"}",
                      "Schedule within each phase of ``fit``: constant, or cosine decay "
                      "``0.5 * lr0 * (1 + cos(pi * epoch / n_epochs))`` set per epoch (an "
                      ":class:`~neural.callbacks.LRScheduler` with ``CosineAnnealingLR``). An "
                      "``LRScheduler`` in ``callbacks`` replaces it; ``partial_fit`` uses "
                      "``learning_rate_init``."),
    "momentum": ("float", "Momentum of SGD (other optimizers take theirs from "
                          "``optimizer_kwargs``)."),
    "nesterovs_momentum": ("bool", "Use Nesterov momentum with SGD."),
    "weight_decay": ("float", "L2 penalty, applied by the optimizer."),
    "early_stopping": ("bool",
                       "Validate after every epoch on ``validation_fraction`` of the training "
                       "data (or on ``validation_data`` passed to ``fit``), end a phase when the "
                       "validation score has not improved by ``tol`` for ``n_iter_no_change`` "
                       "epochs, and keep the best weights. Without it a phase ends when the "
                       "training loss has not improved by ``tol`` for ``n_iter_no_change`` "
                       "epochs. Both are :class:`~neural.callbacks.EarlyStopping` callbacks."),
    "validation_fraction": ("float", "Share of the training data held out with "
                                     "``early_stopping`` (stratified for class labels)."),
    "n_iter_no_change": ("int", "Epochs without improvement before a phase stops."),
    "tol": ("float", "Smallest improvement of the monitored value (training loss, or validation "
                     "score with ``early_stopping``) that counts."),
    "random_state": ("int, RandomState instance or None",
                     "Seeds weight initialisation, minibatch order, the validation split and "
                     "the model's own sampling. An int gives identical results across CPU runs; "
                     "a fit resumed from a checkpoint continues the same streams."),
    "verbose": ("int", "0: silent; 1: a progress bar over epochs (a "
                       ":class:`~neural.callbacks.ProgressBar`)."),
    "warm_start": ("bool", "Reuse the module and optimizer of the previous ``fit`` as the "
                           "starting point."),
    "device": ("{\"auto\", \"cpu\", \"cuda\"} or torch.device",
               "Where to train; ``\"auto\"`` picks CUDA when it is available."),
    "num_workers": ("int", "Worker processes of the DataLoader that reads the training data (0: "
                           "the calling process). Useful with lazy datasets that decode files."),
    "precision": ("{\"32\", \"bf16\", \"16\"}",
                  "Precision of the forward passes (training, validation, prediction): float32, "
                  "or :func:`torch.autocast` with bfloat16, or with float16 and gradient scaling "
                  "(CUDA only: refused on the CPU). Weights and optimizer state stay float32."),
    "distributed": ("{\"auto\", \"off\"}",
                    "``\"auto\"``: train with DistributedDataParallel across the processes of "
                    "torch.distributed's default group when it has more than one (initialised "
                    "from the environment when the script runs under ``torchrun``); ``\"off\"``: "
                    "train in this process alone. See :ref:`neural_distributed`."),
    "input_shape": ("tuple of int or None",
                    "Shape of one image, ``(C, H, W)`` or ``(H, W)``, used to unflatten 2-D "
                    "input of shape (n_samples, C*H*W). None reads 2-D input as C=n_features "
                    "channels of a 1x1 image."),
    "callbacks": ("list of Callback or None",
                  "Objects whose hooks the training loop calls (see :mod:`neural.callbacks`): "
                  "checkpoints, loggers, schedules, early stopping, your own. They are used as "
                  "given (their state is updated) and are not written by ``save``."),
}

TRAINING_ATTRIBUTES = {
    "module_": ("torch.nn.Module", "The trained network."),
    "optimizer_": ("torch.optim.Optimizer", "The optimizer (its state carries over to "
                                           "``warm_start`` and ``partial_fit``)."),
    "history_": ("list of dict", "One record per epoch: ``epoch``, ``lr``, ``loss``, ``time`` "
                                 "(seconds of training) and ``validation_score`` when the fit "
                                 "validates{history}."),
    "loss_curve_": ("list of float", "``loss`` per epoch."),
    "n_iter_": ("int", "Epochs run over the estimator's life (all phases)."),
    "best_loss_": ("float", "Smallest epoch loss."),
    "validation_scores_": ("list of float or None", "Validation score per validated epoch (None "
                                                    "without validation)."),
    "best_validation_score_": ("float or None", "Largest validation score (None without "
                                                "validation)."),
    "peak_activation_bytes_": ("int", "Peak bytes of tensors saved for backward during the first "
                                      "step of the last training phase (storages deduplicated, "
                                      "parameters excluded)."),
    "peak_memory_bytes_": ("int", "Peak bytes held during a steady-state training step (the "
                                  "second of the last phase, after a warm-up step; the first if "
                                  "the phase has one): weights, gradients, optimizer state, "
                                  "activations and temporaries. On CUDA, "
                                  "``torch.cuda.max_memory_allocated`` over the step (peak stats "
                                  "reset before it). On CPU, the peak of bytes held by live "
                                  "tensors, counted by storage as operators create them and "
                                  "uncounted when they are freed "
                                  "(:class:`neural.memory.LiveTensorMemory`), so that memory the C "
                                  "allocator caches after a free does not count."),
    "peak_cuda_memory_bytes_": ("int or None", "On CUDA, ``torch.cuda.max_memory_allocated`` "
                                               "during the second step of the last phase (after a "
                                               "warm-up step), the same as "
                                               "``peak_memory_bytes_``; None on CPU."),
    "device_": ("torch.device", "Device used."),
    "input_shape_": ("tuple of int", "``(C, H, W)`` of one training image."),
    "n_features_in_": ("int", "``X.shape[1]`` at fit time (channels for image input)."),
}
# attributes only image models have
_IMAGE_ONLY = ("input_shape_", "n_features_in_")


def _entries(items):
    lines = []
    for head, text in items:
        lines.append(head)
        lines += textwrap.wrap(text, 76, initial_indent="    ", subsequent_indent="    ",
                               break_on_hyphens=False, break_long_words=False)
    return lines


def _render_params(defaults):
    # in the order of the signature, as numpydoc checks
    return _entries((f"{name} : {TRAINING_PARAMS[name][0]}, default={value!r}",
                     TRAINING_PARAMS[name][1])
                    for name, value in defaults.items() if name in TRAINING_PARAMS)


def _render_attributes(history, images):
    extra = f"; and {history}" if history else ""
    return _entries((f"{name} : {kind}", text.replace("{history}", extra))
                    for name, (kind, text) in TRAINING_ATTRIBUTES.items()
                    if images or name not in _IMAGE_ONLY)


def fill_docstring(cls):
    """Replace the ``{training_params}`` and ``{training_attributes}`` markers of ``cls.__doc__``.

    Parameters
    ----------
    cls : type
        An estimator class. Its ``_history_doc`` (str) names its own
        ``history_`` keys.

    Returns
    -------
    doc : str or None
        The filled docstring (unchanged when it has no markers).
    """
    doc = cls.__doc__
    if doc is None or ("{training_params}" not in doc and "{training_attributes}" not in doc):
        return doc
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for marker, lines in (("{training_params}", _render_params(defaults)),
                          ("{training_attributes}",
                           _render_attributes(getattr(cls, "_history_doc", ""),
                                              "input_shape" in defaults))):
        if marker not in doc:
            continue
        line = next(ln for ln in doc.splitlines() if ln.strip() == marker)
        indent = line[: len(line) - len(line.lstrip())]
        block = "\n".join(indent + ln if ln else ln for ln in lines)
        doc = doc.replace(line, block)
    return doc
