"""The reference code's shipped P2C configurations, as parameters of :class:`P2CClassifier`."""

__all__ = ["reference_params"]

# run_extractive.sh / run_generative.sh / run_subjective.sh of minnesotanlp/p2c with common.py's
# defaults: 3 heads, cls / pref weights 1, cons 1.0, div 0.1, Adam at a constant rate, no weight
# decay, batch 16, 20 epochs; both texts of every pair classified.
_COMMON = {
    "n_pref_heads": 3,
    "lambda_cls": 1.0,
    "lambda_pref": 1.0,
    "lambda_div": 0.1,
    "lambda_cons": 1.0,
    "classify_partners": True,
    "max_iter": 20,
    "batch_size": 16,
    "solver": "adam",
    "learning_rate": "constant",
    "weight_decay": 0.0,
}

_SOURCES = {
    # --pair_loss --sampling disagreement
    "extractive": {"consistency": "margin", "sampling": "disagreement"},
    # --consistency, random partners
    "generative": {"consistency": "label", "sampling": "random"},
    "subjective": {"consistency": "label", "sampling": "random"},
}


def reference_params(source="extractive"):
    """Return the parameters of :class:`P2CClassifier` that follow the reference code's recipe.

    The reference code (``minnesotanlp/p2c``) ships one run script per
    preference source. With annotation records (``"extractive"``, the
    paper's headline setting) it trains with the soft-label margin term over
    all classes and disagreement-based pair sampling; with preferences from
    a language model (``"generative"``) or crowd workers (``"subjective"``)
    it uses the label consistency hinge and random partners. All classify
    both texts of every pair, with three preference heads, the diversity
    term at 0.1, Adam at a constant learning rate without weight decay,
    batches of 16 and 20 epochs. Use it as
    ``P2CClassifier(**reference_params())``; change any setting afterwards
    with ``set_params``.

    Not included, because they do not carry over: the encoder (the reference
    fine-tunes RoBERTa-base; nothing is downloaded here) and its learning
    rate (1e-5 for fine-tuning a pretrained encoder; the encoders trained
    from scratch here keep ``learning_rate_init``). The reference also keeps
    the epoch with the best validation score; pass ``validation_data`` and
    a :class:`~neural.callbacks.Checkpoint` for that.

    Parameters
    ----------
    source : {"extractive", "generative", "subjective"}, default="extractive"
        The preference source whose run script to follow. ``"extractive"``
        needs ``soft_labels`` in ``fit``.

    Returns
    -------
    params : dict
        Keyword arguments of :class:`P2CClassifier` (a new dict per call).

    Examples
    --------
    >>> from neural.text import P2CClassifier, reference_params
    >>> clf = P2CClassifier(**reference_params("extractive"))
    >>> clf.consistency, clf.classify_partners, clf.sampling
    ('margin', True, 'disagreement')
    """
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {sorted(_SOURCES)}; got {source!r}.")
    return {**_COMMON, **_SOURCES[source]}
