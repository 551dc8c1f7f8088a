"""A small plain-ViT segmenter with stage-end heads and dynamic token pruning (DToP).

The backbone is a plain ViT (patch embedding, pre-norm transformer blocks) cut
into stages by auxiliary per-token classification heads. At the end of every
stage but the last, tokens whose top class probability exceeds ``p0`` are
finalised with that stage's prediction and leave the sequence, except the ``k``
most confident easy tokens of each class, which stay for context. Later blocks
compute attention and MLP on the remaining tokens of each image only.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._flops import dtop_flops, unpruned_flops

__all__ = ["DToPViT", "DToPOutput", "select_exits"]


class _Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, pad=None):
        b, n, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if pad is not None:
            attn = attn.masked_fill(pad[:, None, None, :], float("-inf"))
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim, num_heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, pad=None):
        x = x + self.attn(self.norm1(x), pad)
        return x + self.mlp(self.norm2(x))


@dataclass
class DToPOutput:
    """What one forward pass of :class:`DToPViT` returns (token level).

    Attributes
    ----------
    logits : torch.Tensor of shape (B, N, n_classes)
        Assembled token logits: each token's logits from the head of the
        stage where it exited (the last head for tokens that never exited).
    exit_stage : torch.Tensor of shape (B, N)
        Stage (0-based) at which each token's prediction was finalised.
    n_active : torch.Tensor of shape (B, n_stages)
        Tokens processed by the blocks (and head) of every stage, per image.
    stage_logits : list of torch.Tensor of shape (B, N, n_classes)
        The logit canvas after each stage whose head ran (auxiliary heads do
        not run at inference without pruning): positions processed by that
        stage hold its head's logits, earlier exits keep their own.
    """

    logits: torch.Tensor
    exit_stage: torch.Tensor
    n_active: torch.Tensor
    stage_logits: list


def select_exits(logits, active, p0, k):
    """Select the tokens that exit at a stage: confident ones, minus the top-k kept per class.

    Parameters
    ----------
    logits : torch.Tensor of shape (B, N, C)
        Head logits (only the entries of active tokens are read).
    active : torch.Tensor of bool, shape (B, N)
        Tokens still in the sequence.
    p0 : float
        Confidence threshold: a token is easy when its top softmax probability
        is strictly above ``p0`` (so ``p0 >= 1`` never prunes).
    k : int
        Per image and class, the ``min(k, n_c)`` most confident easy tokens of
        the ``n_c`` easy tokens predicted as that class stay in the sequence.

    Returns
    -------
    exits : torch.Tensor of bool, shape (B, N)
        Tokens finalised at this stage.
    """
    with torch.no_grad():
        conf, cls = logits.float().softmax(dim=-1).max(dim=-1)
        easy = active & (conf > p0)
        if k > 0 and bool(easy.any()):
            n_classes = logits.shape[-1]
            of_class = cls[..., None] == torch.arange(n_classes, device=cls.device)
            score = torch.where(easy[..., None] & of_class, conf[..., None], -torch.inf)
            score = score.transpose(1, 2)  # (B, C, N)
            vals, idx = score.topk(min(k, score.shape[-1]), dim=-1)
            keep = torch.zeros_like(score, dtype=torch.bool)
            keep.scatter_(-1, idx, vals > -torch.inf)
            easy = easy & ~keep.any(dim=1)
        return easy


class DToPViT(nn.Module):
    """Plain ViT segmenter split into stages by per-token classification heads.

    Parameters
    ----------
    in_channels : int
        Image channels.
    image_size : tuple of int
        ``(H, W)``; both divisible by ``patch_size``.
    n_classes : int
        Number of classes.
    patch_size : int, default=4
        Side of the square patches (tokens).
    embed_dim : int, default=64
        Token width.
    depth : int, default=6
        Number of transformer blocks.
    num_heads : int, default=4
        Attention heads (must divide ``embed_dim``).
    mlp_ratio : float, default=4.0
        MLP hidden width is ``int(mlp_ratio * embed_dim)``.
    stage_ends : tuple of int, default=(2, 4)
        Blocks (1-based, increasing, below ``depth``) after which an auxiliary
        head sits; the final head sits after block ``depth``.
    """

    def __init__(self, in_channels, image_size, n_classes, patch_size=4, embed_dim=64, depth=6,
                 num_heads=4, mlp_ratio=4.0, stage_ends=(2, 4)):
        super().__init__()
        H, W = image_size
        self.patch_size = patch_size
        self.image_size = (H, W)
        self.grid = (H // patch_size, W // patch_size)
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.hidden = int(mlp_ratio * embed_dim)
        self.n_classes = n_classes
        self.depth = depth
        self.stage_ends = tuple(int(s) for s in stage_ends) + (depth,)
        n_tokens = self.grid[0] * self.grid[1]
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(_Block(embed_dim, num_heads, self.hidden) for _ in range(depth))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, n_classes))
            for _ in self.stage_ends
        )

    @property
    def n_tokens(self):
        """Tokens per image."""
        return self.grid[0] * self.grid[1]

    @property
    def n_stages(self):
        """Number of stages (auxiliary heads + 1)."""
        return len(self.stage_ends)

    def _embed(self, x):
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def forward_dense(self, x):
        """The ordinary unpruned segmenter: all blocks on all tokens, final head only.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C, H, W)
            Images.

        Returns
        -------
        logits : torch.Tensor of shape (B, N, n_classes)
            Token logits of the final head.
        """
        t = self._embed(x)
        for blk in self.blocks:
            t = blk(t)
        return self.heads[-1](t)

    def forward(self, x, p0=1.0, k=5, run_aux=None):
        """Forward with dynamic token pruning.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C, H, W)
            Images.
        p0 : float, default=1.0
            Confidence threshold (``1.0``: no pruning).
        k : int, default=5
            Easy tokens kept per class and image for context.
        run_aux : bool or None, default=None
            Run the auxiliary heads; None runs them when training (for the
            auxiliary losses) or when ``p0 < 1`` (they decide the exits).

        Returns
        -------
        out : DToPOutput
            Assembled token logits, exit stages, active-token counts.
        """
        if run_aux is None:
            run_aux = self.training or p0 < 1.0
        prune = p0 < 1.0
        if prune and not run_aux:
            raise ValueError(f"p0={p0} < 1 prunes tokens, which needs the auxiliary heads; "
                             "pass run_aux=True (or None).")
        t = self._embed(x)
        B, N, d = t.shape
        active = torch.ones(B, N, dtype=torch.bool, device=t.device)
        exit_stage = torch.full((B, N), self.n_stages - 1, dtype=torch.long, device=t.device)
        n_active, stage_logits = [], []
        canvas = None
        start = 0
        for s, end in enumerate(self.stage_ends):
            last = s == self.n_stages - 1
            counts = active.sum(dim=1)
            n_active.append(counts)
            blocks = self.blocks[start:end]
            start = end
            if bool(active.all()):
                for blk in blocks:
                    t = blk(t)
                if last or run_aux:
                    canvas = self.heads[s](t)
            else:
                n_max = int(counts.max())
                if n_max == 0:  # every token of every image has exited
                    stage_logits.append(canvas)
                    continue
                # active tokens first, in their original order, padded to the longest image
                order = torch.argsort((~active).to(torch.int8), dim=1, stable=True)[:, :n_max]
                valid = torch.arange(n_max, device=t.device) < counts[:, None]
                # images without active tokens keep every key, so no softmax row is all -inf
                pad = ~valid & (counts > 0)[:, None]
                h = t.gather(1, order[..., None].expand(-1, -1, d))
                for blk in blocks:
                    h = blk(h, pad)
                t = torch.where(active[..., None], t.scatter(1, order[..., None].expand(-1, -1, d), h), t)
                logits = self.heads[s](h)
                C = logits.shape[-1]
                placed = torch.zeros_like(canvas).scatter(1, order[..., None].expand(-1, -1, C), logits)
                canvas = torch.where(active[..., None], placed, canvas)
            if last or run_aux:
                stage_logits.append(canvas)
            if prune and not last:
                exits = select_exits(canvas, active, p0, k)
                exit_stage = torch.where(exits, s, exit_stage)
                active = active & ~exits
        return DToPOutput(canvas, exit_stage, torch.stack(n_active, dim=1), stage_logits)

    def upsample(self, token_logits):
        """Token logits (B, N, C) to pixel logits (B, C, H, W), bilinear.

        Parameters
        ----------
        token_logits : torch.Tensor of shape (B, N, C)
            Logits per token.

        Returns
        -------
        logits : torch.Tensor of shape (B, C, H, W)
            Logits per pixel.
        """
        B, N, C = token_logits.shape
        grid = token_logits.transpose(1, 2).reshape(B, C, *self.grid)
        if self.patch_size == 1:
            return grid
        return F.interpolate(grid, size=self.image_size, mode="bilinear", align_corners=False)

    def _flops_args(self):
        return dict(in_channels=self.in_channels, patch_size=self.patch_size, dim=self.embed_dim,
                    hidden=self.hidden, n_classes=self.n_classes,
                    blocks_per_stage=[b - a for a, b in zip((0,) + self.stage_ends[:-1], self.stage_ends)])

    def flops(self, n_active, aux_heads=True):
        """Analytic FLOPs per image of a forward with the given active-token counts.

        Parameters
        ----------
        n_active : array-like of shape (n_images, n_stages)
            Tokens processed by each stage, as ``n_active`` of :class:`DToPOutput`.
        aux_heads : bool, default=True
            Count the auxiliary heads (they run whenever pruning is on).

        Returns
        -------
        flops : ndarray of shape (n_images,)
            FLOPs (2 per multiply-add) of patch embedding, blocks and heads.
        """
        return dtop_flops(n_active, self.n_tokens, aux_heads=aux_heads, **self._flops_args())

    def flops_unpruned(self):
        """Analytic FLOPs per image of :meth:`forward_dense` (no auxiliary heads).

        Returns
        -------
        flops : int
            FLOPs of patch embedding, all blocks on all tokens and the final head.
        """
        return unpruned_flops(self.n_tokens, **self._flops_args())
