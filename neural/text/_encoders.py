"""Sentence encoders: trained here (embedding bag, tiny transformer) or pretrained (adapter)."""

import numpy as np
import torch
from torch import nn

__all__ = ["BagEncoder", "TransformerTextEncoder", "SentenceEncoder"]


def _masked_mean(h, mask):
    mask = mask.unsqueeze(-1).to(h.dtype)
    return (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class BagEncoder(nn.Module):
    """Mean of word embeddings (an embedding bag) followed by a tanh layer.

    Parameters
    ----------
    n_ids : int
        Vocabulary size, padding (id 0) included.
    dim : int
        Embedding and output dimension.
    """

    def __init__(self, n_ids, dim):
        super().__init__()
        self.embed = nn.Embedding(n_ids, dim, padding_idx=0)
        self.proj = nn.Linear(dim, dim)
        self.out_dim = dim

    def forward(self, ids):
        """Encode token ids into sentence features.

        Parameters
        ----------
        ids : torch.Tensor of shape (n, L)
            Token ids, 0 for padding.

        Returns
        -------
        features : torch.Tensor of shape (n, dim)
            One row per text.
        """
        return torch.tanh(self.proj(_masked_mean(self.embed(ids), ids != 0)))


class TransformerTextEncoder(nn.Module):
    """A tiny transformer encoder: embeddings + learned positions, mean-pooled.

    Parameters
    ----------
    n_ids : int
        Vocabulary size, padding (id 0) included.
    dim : int
        Model dimension.
    max_length : int
        Longest sequence (number of learned positions).
    n_layers : int, default=1
        Encoder layers.
    n_heads : int, default=2
        Attention heads (must divide ``dim``).
    dropout : float, default=0.1
        Dropout inside the layers.
    """

    def __init__(self, n_ids, dim, max_length, n_layers=1, n_heads=2, dropout=0.1):
        super().__init__()
        self.embed = nn.Embedding(n_ids, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, n_heads, 2 * dim, dropout, batch_first=True)
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, ids):
        """Encode token ids into sentence features.

        Parameters
        ----------
        ids : torch.Tensor of shape (n, L)
            Token ids, 0 for padding.

        Returns
        -------
        features : torch.Tensor of shape (n, dim)
            One row per text.
        """
        mask = ids != 0
        h = self.embed(ids) + self.pos[:, : ids.shape[1]]
        h = self.layers(h, src_key_padding_mask=~mask)
        return self.norm(_masked_mean(h, mask))


class SentenceEncoder:
    """Adapter for a pretrained sentence encoder installed locally (frozen).

    The model is never downloaded: with a name or a path, the
    ``sentence-transformers`` package must be installed and the model must be
    on disk (a folder, or the local Hugging Face cache). Any object with an
    ``encode(list_of_str) -> array (n, d)`` method is accepted as well.

    Parameters
    ----------
    model : str or object
        Path or name of a local sentence-transformers model (for example a
        downloaded copy of ``all-MiniLM-L6-v2``), or an object with ``encode``.
    batch_size : int, default=64
        Texts per encoder call.

    Raises
    ------
    ImportError
        If ``model`` is a string and ``sentence-transformers`` is not installed.
    ValueError
        If the model is not available locally.
    """

    def __init__(self, model, batch_size=64):
        self.model = model
        self.batch_size = batch_size
        self._encoder = None

    def _load(self):
        if self._encoder is not None:
            return self._encoder
        if not isinstance(self.model, str):
            if not callable(getattr(self.model, "encode", None)):
                raise ValueError(
                    "pretrained_model must be the name or path of a local sentence-transformers "
                    f"model, or an object with an encode(texts) method; got {self.model!r}."
                )
            self._encoder = self.model
            return self._encoder
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                f"encoder='pretrained' with pretrained_model={self.model!r} needs the "
                "sentence-transformers package and a local copy of the model (nothing is "
                "downloaded at run time): pip install sentence-transformers, save the model "
                "to a folder and pass its path; or use encoder='bag' or 'transformer'."
            ) from exc
        try:
            self._encoder = SentenceTransformer(self.model, device="cpu", local_files_only=True)
        except Exception as exc:  # OSError / ValueError / HF errors for a missing model
            raise ValueError(
                f"the sentence encoder {self.model!r} is not available locally ({exc}); "
                "nothing is downloaded at run time: pass the path of a saved model."
            ) from exc
        return self._encoder

    def encode(self, texts):
        """Embed texts.

        Parameters
        ----------
        texts : sequence of str
            Texts.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, dim), dtype float32
            One row per text.
        """
        enc = self._load()
        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            emb = enc.encode(chunk)
            if isinstance(emb, torch.Tensor):
                emb = emb.detach().cpu().numpy()
            out.append(np.asarray(emb, dtype=np.float32).reshape(len(chunk), -1))
        emb = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        if not np.isfinite(emb).all():
            raise ValueError("the pretrained sentence encoder returned NaN or inf embeddings.")
        return emb

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.model, str):
            state["_encoder"] = None  # reloaded from disk when needed
        return state
