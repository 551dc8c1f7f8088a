"""The ASTR network (small CPU version): shared CNN encoder, sparse context, cross-attention."""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ASTRNet", "ASTROutput", "ProductFusion", "select_sparse_tokens", "astr_loss"]


def _conv_bn(c_in, c_out, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Shared CNN: full-, half- and quarter-resolution features (and, with ``deep``, two more
    stages at an eighth and a sixteenth of the resolution)."""

    def __init__(self, in_channels, width, dim, deep=False):
        super().__init__()
        self.s1 = nn.Sequential(_conv_bn(in_channels, width), _conv_bn(width, width))
        self.s2 = nn.Sequential(_conv_bn(width, 2 * width, stride=2), _conv_bn(2 * width, 2 * width))
        self.s3 = nn.Sequential(_conv_bn(2 * width, dim, stride=2), _conv_bn(dim, dim))
        self.deeper = nn.ModuleList(
            nn.Sequential(_conv_bn(dim, dim, stride=2), _conv_bn(dim, dim)) for _ in range(2)
        ) if deep else nn.ModuleList()

    def forward(self, x):
        """Features of every stage, finest first: (f1, f2, f3[, f4, f5])."""
        feats = [self.s1(x)]
        feats.append(self.s2(feats[-1]))
        feats.append(self.s3(feats[-1]))
        for stage in self.deeper:
            feats.append(stage(feats[-1]))
        return feats


class ProductFusion(nn.Module):
    """The reference's fusion of three encoder stages: ``[f5, f4*f5, f3*f4*f5]``.

    Each stage is projected to ``dim`` channels (1x1 conv + BN + ReLU) and
    upsampled (bilinear) to the grid of the finest one; the products let the
    coarse, semantic stages gate the finer ones. The reference keeps the
    3 x 64 concatenated channels as its tokens; here a 1x1 conv + BN + ReLU
    maps the concatenation back to ``dim`` so the rest of the network keeps
    its width.

    Parameters
    ----------
    dim : int
        Channels of the three input stages and of the output.
    """

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.ModuleList(_conv_bn(dim, dim, 1) for _ in range(3))
        self.out = _conv_bn(3 * dim, dim, 1)

    def forward(self, f3, f4, f5):
        """Fuse three stages onto the grid of the finest.

        Parameters
        ----------
        f3, f4, f5 : Tensor of shape (B, dim, h_i, w_i)
            Encoder stages, finest first.

        Returns
        -------
        tokens : Tensor of shape (B, dim, h_3, w_3)
            Fused features on the grid of ``f3``.
        """
        size = f3.shape[-2:]
        a, b, c = (p(f) for p, f in zip(self.proj, (f3, f4, f5)))
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        c = F.interpolate(c, size=size, mode="bilinear", align_corners=False)
        return self.out(torch.cat([c, b * c, a * b * c], 1))


class MixPool(nn.Module):
    """Multi-scale context of an auxiliary frame: avg + max pooling at kernel ``k``.

    The pooled maps are projected (1x1 conv + BN + ReLU), with ``conv`` passed
    through a 3x3 conv + BN + ReLU at the pooled resolution (as the
    reference), upsampled and fused with the unpooled features (1x1 conv).
    """

    def __init__(self, dim, k, conv=True):
        super().__init__()
        self.k = k
        self.reduce = _conv_bn(2 * dim, dim, 1)
        self.conv = _conv_bn(dim, dim) if conv else nn.Identity()
        self.fuse = nn.Conv2d(2 * dim, dim, 1)

    def forward(self, f):
        if self.k > 1 and min(f.shape[-2:]) >= self.k:
            p = torch.cat([F.avg_pool2d(f, self.k), F.max_pool2d(f, self.k)], 1)
            p = F.interpolate(self.conv(self.reduce(p)), size=f.shape[-2:], mode="nearest")
        else:
            p = self.conv(self.reduce(torch.cat([f, f], 1)))
        return self.fuse(torch.cat([f, p], 1))


class Attention(nn.Module):
    """Multi-head attention with a key padding mask; rows with no valid key give 0.

    ``bias`` (B, Nq, Nk), if given, is added to the scores of every head.
    """

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q, kv, valid=None, bias=None):
        B, Nq, D = q.shape
        Nk, h = kv.shape[1], self.heads
        if Nk == 0:
            return q.new_zeros(B, Nq, D)
        qh = self.q(q).reshape(B, Nq, h, D // h).transpose(1, 2)
        k, v = self.kv(kv).reshape(B, Nk, 2, h, D // h).permute(2, 0, 3, 1, 4)
        scores = qh @ k.transpose(-1, -2) / math.sqrt(D // h)
        if bias is not None:
            scores = scores + bias[:, None]
        if valid is not None:
            keep = valid[:, None, None, :]
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            attn = scores.softmax(-1) * keep  # all-masked rows become 0, no NaN
        else:
            attn = scores.softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(B, Nq, D)
        return self.proj(out)


class Block(nn.Module):
    """Pre-LN transformer block: conv position code, (cross-)attention, MLP.

    ``pos_conv`` is ``"full"`` (a 3x3 convolution over all channels, as the
    reference) or ``"depthwise"`` (one 3x3 filter per channel).
    """

    def __init__(self, dim, heads, mlp_ratio=2.0, cross=False, pos_conv="full"):
        super().__init__()
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim if pos_conv == "depthwise" else 1)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        if cross:
            # a learned "no context here" token (always valid) and a learnable
            # Gaussian locality bias -beta * distance^2 between query and key
            # positions (in feature-grid cells)
            self.null = nn.Parameter(torch.zeros(1, 1, dim))
            self.log_beta = nn.Parameter(torch.tensor(0.0))
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = max(int(dim * mlp_ratio), 1)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, context=None, valid=None, positions=None):
        B, D, H, W = x.shape
        x = x + self.pos(x)
        t = x.flatten(2).transpose(1, 2)
        q = self.norm_q(t)
        if self.norm_kv is None:
            t = t + self.attn(q, q)
        else:
            kv = torch.cat([self.null.expand(B, -1, -1), self.norm_kv(context)], 1)
            valid = torch.cat([valid.new_ones(B, 1), valid], 1)
            ys, xs = torch.meshgrid(torch.arange(H, device=x.device), torch.arange(W, device=x.device),
                                    indexing="ij")
            qpos = torch.stack([ys.reshape(-1), xs.reshape(-1)], -1).float()
            d2 = ((qpos[None, :, None, :] - positions[:, None, :, :].float()) ** 2).sum(-1)
            bias = F.pad(-self.log_beta.exp() * d2, (1, 0))  # the null token has no position
            t = t + self.attn(q, kv, valid, bias)
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(B, D, H, W)


def select_sparse_tokens(features, body_logits, *, dense=False):
    """Gather the auxiliary-frame tokens where the body head predicts lesion neighbourhood.

    Parameters
    ----------
    features : Tensor of shape (B, A, D, h, w)
        Features of the A auxiliary frames.
    body_logits : Tensor of shape (B, A, 1, h, w)
        Body-head logits; a position is kept where its logit is > 0.
    dense : bool, default=False
        Keep every position (the dense-context variant).

    Returns
    -------
    tokens : Tensor of shape (B, N, D)
        Kept tokens, zero-padded to N = the largest count in the batch.
    valid : Tensor of bool, shape (B, N)
        Which of the N slots hold a real token.
    counts : Tensor of int, shape (B,)
        Tokens kept per clip (= number of positive body-map positions).
    positions : Tensor of int, shape (B, N, 2)
        (row, column) of every kept token on the feature grid.
    """
    B, A, D, h, w = features.shape
    tok = features.permute(0, 1, 3, 4, 2).reshape(B, A * h * w, D)
    keep = torch.ones(B, A * h * w, dtype=torch.bool, device=features.device) if dense else (
        body_logits.reshape(B, A * h * w) > 0)
    counts = keep.sum(1)
    N = int(counts.max()) if B else 0
    # stable sort puts kept positions first, in their original order
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :N]
    tokens = torch.gather(tok, 1, order[..., None].expand(-1, -1, D))
    valid = torch.arange(N, device=features.device)[None, :] < counts[:, None]
    cell = order % (h * w)
    positions = torch.stack([cell // w, cell % w], -1)
    return tokens * valid[..., None], valid, counts, positions


@dataclass
class ASTROutput:
    """What :class:`ASTRNet` returns.

    Parameters
    ----------
    logits : Tensor of shape (B, 1, H, W)
        Key-frame lesion logits.
    body_logits : Tensor of shape (B, A, 1, h, w) or None
        Body maps of the A auxiliary frames (None for single frames).
    n_tokens : Tensor of int, shape (B,)
        Context tokens the cross-attention attended to, per clip.
    """

    logits: torch.Tensor
    body_logits: torch.Tensor
    n_tokens: torch.Tensor


class ASTRNet(nn.Module):
    """Adaptive sparse-context transformer on clips [key, aux_1, ..., aux_A].

    Parameters
    ----------
    in_channels : int
        Channels of a frame.
    n_frames : int
        Clip length T (1 = the single-frame network: no context).
    width : int, default=8
        Channels of the full-resolution encoder stage (x2 at half resolution).
    dim : int, default=32
        Token dimension (quarter-resolution features).
    heads : int, default=4
        Attention heads.
    depth : int, default=1
        Self-attention blocks on the key frame.
    context : {"sparse", "dense"}, default="sparse"
        Attend to the body-selected auxiliary tokens, or to all of them.
    fusion : {"last", "product"}, default="last"
        Tokens from the last (quarter-resolution) encoder stage, or the
        reference's product fusion of three stages (quarter, eighth and
        sixteenth resolution, two more encoder stages), see
        :class:`ProductFusion`.
    frame_embedding : bool, default=False
        Add a learned embedding of the auxiliary frame's index to its
        context tokens (not in the reference).
    shared_body : bool, default=False
        One body head for every auxiliary frame, instead of one per frame as
        the reference.
    pos_conv : {"full", "depthwise"}, default="full"
        Positional convolution of the transformer blocks: a 3x3 convolution
        over all channels as the reference, or one filter per channel.
    mixpool_conv : bool, default=True
        The 3x3 conv + BN + ReLU of the reference's MixPool at the pooled
        resolution.

    Notes
    -----
    The defaults are the reference code's forms. ``frame_embedding=True``,
    ``shared_body=True``, ``pos_conv="depthwise"`` and ``mixpool_conv=False``
    are the forms of an earlier version of this network; they are kept for
    ``benchmarks/bench_astr.py --ablation``, which measured no difference in
    Dice between them and the reference forms on the synthetic videos.
    """

    def __init__(self, in_channels, n_frames, *, width=8, dim=32, heads=4, depth=1,
                 context="sparse", fusion="last", frame_embedding=False, shared_body=False,
                 pos_conv="full", mixpool_conv=True):
        super().__init__()
        self.n_frames, self.context, self.dim = n_frames, context, dim
        self.encoder = Encoder(in_channels, width, dim, deep=fusion == "product")
        self.fusion = ProductFusion(dim) if fusion == "product" else None
        self.local = nn.ModuleList(Block(dim, heads, pos_conv=pos_conv) for _ in range(depth))
        self.frame_embed = None
        if n_frames > 1:
            n_body = 1 if shared_body else n_frames - 1
            self.body = nn.ModuleList(nn.Sequential(_conv_bn(dim, dim), nn.Conv2d(dim, 1, 1))
                                      for _ in range(n_body))
            self.mixpool = nn.ModuleList(MixPool(dim, 2 ** (i + 1), conv=mixpool_conv)
                                         for i in range(n_frames - 1))
            if frame_embedding:
                self.frame_embed = nn.Parameter(torch.zeros(n_frames - 1, dim))
            self.cross = Block(dim, heads, cross=True, pos_conv=pos_conv)
        self.fuse = _conv_bn(3 * dim, dim, 1)
        self.up2 = _conv_bn(dim + 2 * width, 2 * width)
        self.up1 = _conv_bn(2 * width + width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def _body_maps(self, aux):
        """Body-head logits (B, A, 1, h, w) of the auxiliary frames' features (B, A, D, h, w)."""
        B, A = aux.shape[:2]
        if len(self.body) == 1:
            return self.body[0](aux.flatten(0, 1)).reshape(B, A, 1, *aux.shape[-2:])
        return torch.stack([self.body[i](aux[:, i]) for i in range(A)], 1)

    def forward(self, x, dense=None):
        """Segment the key frame of every clip.

        Parameters
        ----------
        x : Tensor of shape (B, T, C, H, W)
            Clips, frame 0 the key frame.
        dense : bool or None, default=None
            Override ``context`` (True: attend to every auxiliary token).

        Returns
        -------
        out : ASTROutput
            Key-frame logits, body maps and context-token counts.
        """
        B, T, C, H, W = x.shape
        feats = self.encoder(x.reshape(B * T, C, H, W))
        f1, f2 = (f.reshape(B, T, *f.shape[1:])[:, 0] for f in feats[:2])
        f3 = feats[2] if self.fusion is None else self.fusion(*feats[2:])
        f3 = f3.reshape(B, T, *f3.shape[1:])
        key = f3[:, 0]
        h, w = key.shape[-2:]
        local = key
        for blk in self.local:
            local = blk(local)
        body = None
        n_tokens = torch.zeros(B, dtype=torch.long, device=x.device)
        glob = local
        if T > 1:
            aux = f3[:, 1:]
            A = aux.shape[1]
            body = self._body_maps(aux)
            ctx = torch.stack([self.mixpool[i](aux[:, i]) for i in range(A)], 1)
            if self.frame_embed is not None:
                ctx = ctx + self.frame_embed[:A].reshape(1, A, self.dim, 1, 1)
            dense = self.context == "dense" if dense is None else dense
            tokens, valid, n_tokens, pos = select_sparse_tokens(ctx, body.detach(), dense=dense)
            glob = self.cross(local, tokens, valid, pos)
        z = self.fuse(torch.cat([glob, local, key], 1))
        z = F.interpolate(z, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        z = self.up2(torch.cat([z, f2], 1))
        z = F.interpolate(z, size=f1.shape[-2:], mode="bilinear", align_corners=False)
        z = self.up1(torch.cat([z, f1], 1))
        return ASTROutput(self.head(z), body, n_tokens)


def bce_dice_l1(logits, target):
    """BCE-with-logits + (1 - soft Dice) + L1 of the probabilities (ASTR's loss)."""
    s = torch.sigmoid(logits)
    dims = tuple(range(1, logits.ndim))
    bce = F.binary_cross_entropy_with_logits(logits, target)
    dice = (2 * (s * target).sum(dims) / (s.sum(dims) + target.sum(dims) + 1)).mean()
    return bce + (1 - dice) + (s - target).abs().mean()


def astr_loss(out, masks, *, aux_weight=0.3, dilation=2):
    """Key-frame loss + ``aux_weight`` x body-map loss against dilated aux masks.

    Parameters
    ----------
    out : ASTROutput
        Output of :class:`ASTRNet`.
    masks : Tensor of shape (B, T, H, W)
        Masks of the clip frames, key frame first.
    aux_weight : float, default=0.3
        Weight of the body-map loss.
    dilation : int, default=2
        Radius (pixels) of the square dilation of the auxiliary masks.

    Returns
    -------
    loss : Tensor
        The total loss.
    key_loss : Tensor
        Its key-frame part.
    """
    key = bce_dice_l1(out.logits[:, 0], masks[:, 0])
    if out.body_logits is None or aux_weight == 0:
        return key, key
    B, A, _, h, w = out.body_logits.shape
    m = masks[:, 1:1 + A].reshape(B * A, 1, *masks.shape[-2:])
    if dilation > 0:
        m = F.max_pool2d(m, 2 * dilation + 1, stride=1, padding=dilation)
    m = F.adaptive_max_pool2d(m, (h, w)).reshape(B, A, 1, h, w)
    return key + aux_weight * bce_dice_l1(out.body_logits, m), key
