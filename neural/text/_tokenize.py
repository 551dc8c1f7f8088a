"""A small word tokenizer with a vocabulary learned from the training texts."""

import re
from collections import Counter

import numpy as np

__all__ = ["Tokenizer"]

_TOKEN = re.compile(r"[\w']+|[^\w\s]")

PAD, UNK = 0, 1


class Tokenizer:
    """Word-level tokenizer: regex split, vocabulary by frequency, ids padded to a length.

    Id 0 is padding and id 1 the unknown word; words seen in :meth:`fit` get ids
    from 2 on, most frequent first (ties in alphabetical order, so the
    vocabulary does not depend on the order of the texts).

    Parameters
    ----------
    max_vocab : int or None, default=20000
        Keep at most this many words (plus the two special ids).
    min_freq : int, default=1
        Drop words seen fewer times in the training texts.
    lowercase : bool, default=True
        Lowercase before splitting.

    Attributes
    ----------
    vocabulary_ : list of str
        The words, ``vocabulary_[k]`` has id ``k + 2``.
    longest_ : int
        The most tokens in one training text (set by :meth:`fit`).
    """

    def __init__(self, max_vocab=20000, min_freq=1, lowercase=True):
        self.max_vocab = max_vocab
        self.min_freq = min_freq
        self.lowercase = lowercase

    def split(self, text):
        """Split one text into tokens.

        Parameters
        ----------
        text : str
            The text.

        Returns
        -------
        tokens : list of str
            Words and punctuation marks.
        """
        if self.lowercase:
            text = text.lower()
        return _TOKEN.findall(text)

    def fit(self, texts):
        """Learn the vocabulary.

        Parameters
        ----------
        texts : iterable of str
            Training texts.

        Returns
        -------
        self : Tokenizer
            The fitted tokenizer.
        """
        counts = Counter()
        self.longest_ = 0
        for text in texts:
            words = self.split(text)
            counts.update(words)
            self.longest_ = max(self.longest_, len(words))
        words = sorted((w for w, c in counts.items() if c >= self.min_freq),
                       key=lambda w: (-counts[w], w))
        if self.max_vocab is not None:
            words = words[: self.max_vocab]
        self.set_vocabulary(words)
        return self

    def set_vocabulary(self, words):
        """Use a given vocabulary (as after :meth:`fit`).

        Parameters
        ----------
        words : list of str
            Words; ``words[k]`` gets id ``k + 2``.

        Returns
        -------
        self : Tokenizer
            The tokenizer.
        """
        self.vocabulary_ = list(words)
        self._index = {w: k + 2 for k, w in enumerate(self.vocabulary_)}
        return self

    @property
    def n_ids(self):
        """Number of ids, the two special ids included."""
        return len(self.vocabulary_) + 2

    def encode(self, texts, max_length):
        """Token ids, truncated to ``max_length`` and right-padded with 0.

        Parameters
        ----------
        texts : sequence of str
            Texts.
        max_length : int
            Length of the rows.

        Returns
        -------
        ids : ndarray of shape (n_texts, max_length), dtype int64
            Token ids; an empty text is one unknown token.
        """
        out = np.zeros((len(texts), max_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self._index.get(w, UNK) for w in self.split(text)[:max_length]] or [UNK]
            out[row, : len(ids)] = ids
        return out

    def lengths(self, texts):
        """Number of tokens of each text.

        Parameters
        ----------
        texts : sequence of str
            Texts.

        Returns
        -------
        lengths : ndarray of shape (n_texts,)
            Token counts.
        """
        return np.array([len(self.split(t)) for t in texts], dtype=np.int64)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_index", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "vocabulary_" in state:
            self.set_vocabulary(state["vocabulary_"])
