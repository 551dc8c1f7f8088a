"""P2C's training data: encoded texts, labels, and each epoch's same-label partners.

:class:`PairDataset` is the dataset the trainer batches: item ``i`` is
``({"x": tokens, "x2": partner tokens, "has_pair": ..., "pref": ...}, label)``.
The partners are drawn at the start of every epoch by the estimator
(:meth:`PairDataset.set_partners`) and travel with the batch, so nothing is
smuggled through the inputs or the estimator.
"""

import numpy as np
from torch.utils.data import Dataset

from .._data import Batch, _take

__all__ = ["TextInputs", "LazyTextInputs", "PairDataset"]


class TextInputs:
    """Encoded texts held in memory (token ids or sentence features), one row per text."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def take(self, idx):
        return self.rows[idx]

    __getitem__ = take


class LazyTextInputs:
    """Texts of a dataset encoded on read: ``encode(text) -> row``."""

    def __init__(self, texts, encode):
        self.texts = texts
        self.encode = encode

    def __len__(self):
        return len(self.texts)

    def take(self, idx):
        return np.stack([self.encode(self.texts[int(i)]) for i in np.arange(len(self))[idx]])

    __getitem__ = take


class PairDataset(Dataset):
    """Texts, labels and (when preferences exist) this epoch's partners.

    Parameters
    ----------
    inputs : TextInputs or LazyTextInputs
        Encoded texts.
    y : ndarray of int of shape (n,)
        Encoded labels.
    source : SoftLabelSource, PairSource or None, default=None
        Where candidate partners and preferences come from (None: no pairs).
    soft : ndarray of shape (n, n_classes) or None, default=None
        Annotator soft labels.
    use_pairs : bool, default=True
        Whether a loss term uses the pairs (else no partner is drawn).
    carry_soft : bool, default=False
        Put each text's soft labels in its item (``"soft"``) and, when
        partners are drawn, its partner's (``"soft2"``): for soft-label
        targets and the soft-label margin term.
    """

    def __init__(self, inputs, y, source=None, soft=None, use_pairs=True, carry_soft=False):
        if carry_soft and soft is None:
            raise ValueError("carry_soft=True needs soft labels.")
        self.inputs = inputs
        self.y = y
        self.source = source
        self.use_pairs = use_pairs
        self.soft = soft
        self.carry_soft = carry_soft
        self.partner = np.full(len(y), -1, dtype=np.int64)
        self.pref = np.full(len(y), 0.5, dtype=np.float32)

    @property
    def targets(self):
        """Encoded labels (for stratified splits)."""
        return self.y

    @property
    def has_pairs(self):
        """Whether partners are drawn (a preference source exists and a loss term uses it)."""
        return self.source is not None and self.use_pairs

    def set_partners(self, rows, partner, pref):
        """Set the partner (-1: none) and preference of every row in ``rows``.

        Parameters
        ----------
        rows : ndarray of int
            Texts trained on this epoch.
        partner : ndarray of int
            Their partners.
        pref : ndarray of float
            Probability that the text is preferred to its partner.
        """
        self.partner[:] = -1
        self.pref[:] = 0.5
        self.partner[rows] = partner
        self.pref[rows] = pref

    def __len__(self):
        return len(self.y)

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        x = {"x": self.inputs.take(idx)}
        if self.carry_soft:
            x["soft"] = self.soft[idx].astype(np.float32)
        if self.has_pairs:
            partner = self.partner[idx]
            has = partner >= 0
            # rows without a partner carry themselves; the loss uses has_pair to skip them
            other = np.where(has, partner, idx)
            x["x2"] = self.inputs.take(other)
            x["has_pair"] = has
            x["pref"] = self.pref[idx]
            if self.carry_soft:
                x["soft2"] = self.soft[other].astype(np.float32)
        return Batch((_take(x, slice(None)), _take(self.y, idx)))

    def __getitem__(self, i):
        x, y = self.__getitems__([i])
        return {k: v[0] for k, v in x.items()}, y[0]
