"""ASTR on synthetic ultrasound video: temporal context and scanning-mode augmentation.

Train on videos of ONE scanning mode (linear) and test on the OTHER (sector),
in the same run, with the same data, budget and seed:

* ASTR (clips of 3 frames, sparse context) vs the same network on single frames
  (``n_frames=1``),
* each with and without scanning-mode augmentation (``scan_augment``),
* and the reverse direction (train sector, test linear).

A second table times inference per frame of one trained ASTR with sparse
context (only the body-selected tokens) vs dense context (every auxiliary
token), with the mean number of context tokens.

The paper reports 77.6% Dice on its clinical ERUS-10K data (Res2Net-50, 352 px);
ours is a tiny network on a synthetic 32x32 set: the numbers are not comparable,
only the comparisons inside one run are.

``--ablation`` instead measures architecture variants against the estimator's network (the
reference code's forms), over several seeds (train on linear + scan augmentation, test on both
modes): the multi-stage product fusion (``fusion="product"``) and, one at a time and all
together, the forms of an earlier version of this network (a learned frame embedding, one body
head shared by the auxiliary frames, depthwise positional convolution, MixPool without its 3x3
convolution).

Usage::

    python benchmarks/bench_astr.py --quick            # ~2 minutes on 2 cores
    python benchmarks/bench_astr.py --json results.json --out benchmarks/results/
    python benchmarks/bench_astr.py --ablation --seeds 3 --json ablation.json
"""

import os
import time
import warnings

import numpy as np
import torch

from _common import make_parser, print_table, pyplot, write_json

from neural.video import ASTRSegmenter, make_ultrasound_videos


# ASTRNet keyword arguments of each variant. "reference forms" is the estimator's network (the
# reference code's forms); the others put back one departure of an earlier version, or all four.
EARLIER_FORMS = dict(frame_embedding=True, shared_body=True, pos_conv="depthwise",
                     mixpool_conv=False)
VARIANTS = {
    "reference forms": {},
    "product fusion": dict(fusion="product"),
    "+ frame embedding": dict(frame_embedding=True),
    "shared body head": dict(shared_body=True),
    "depthwise positional conv": dict(pos_conv="depthwise"),
    "MixPool without 3x3 conv": dict(mixpool_conv=False),
    "all four earlier forms": EARLIER_FORMS,
    "earlier forms + product fusion": dict(EARLIER_FORMS, fusion="product"),
}


class _Variant(ASTRSegmenter):
    """ASTRSegmenter whose network takes extra ASTRNet arguments (benchmark only)."""

    variant = {}

    def _build_module(self):
        from neural.video import ASTRNet

        kw = dict(width=self.width, dim=self.embed_dim, heads=self.num_heads, depth=self.depth,
                  context=self.context, fusion=self.fusion)
        return ASTRNet(self.input_shape_[0], self.n_frames, **{**kw, **self.variant})


def ablation(args):
    n_train, n_frames, epochs = (12, 6, 8) if args.quick else (24, 8, 20)
    size = 32
    names = list(VARIANTS) if not args.variants else args.variants
    rows, per = [], {}
    for seed in range(args.seed, args.seed + args.seeds):
        X, M, _ = make_ultrasound_videos(n_train, n_frames=n_frames, image_size=size,
                                         scan_mode="linear", random_state=seed)
        test = {m: make_ultrasound_videos(n_train // 2, n_frames=n_frames, image_size=size,
                                          scan_mode=m, random_state=seed + 100 + k)
                for k, m in enumerate(("linear", "sector"))}
        for name in names:
            cls = type("Variant", (_Variant,), {"variant": VARIANTS[name]})
            t0 = time.perf_counter()
            est = cls(3, scan_augment=True, max_iter=epochs, random_state=seed,
                      device="cpu").fit(X, M)
            fit_s = time.perf_counter() - t0
            Xs, Ms, _ = test["sector"]
            est.predict(Xs[:2])  # warm-up
            t0 = time.perf_counter()
            dice_sector = est.score(Xs, Ms)
            ms = 1000 * (time.perf_counter() - t0) / Ms[..., 0, 0].size
            dice_linear = est.score(*test["linear"][:2])
            n_params = sum(p.numel() for p in est.module_.parameters())
            per.setdefault(name, []).append((dice_linear, dice_sector, fit_s, ms, n_params))
            print(f"  seed {seed} {name:34s} Dice linear {dice_linear:.3f} sector "
                  f"{dice_sector:.3f}  params {n_params}  fit {fit_s:.0f}s", flush=True)
    base = np.array(per["reference forms"]) if "reference forms" in per else None
    for name, vals in per.items():
        v = np.array(vals)
        row = {"method": name, "dataset": "synthetic ultrasound 32x32", "n_seeds": len(v),
               "dice_linear": v[:, 0].mean(), "dice_linear_std": v[:, 0].std(),
               "dice_sector": v[:, 1].mean(), "dice_sector_std": v[:, 1].std(),
               "params": int(v[0, 4]), "fit_s": v[:, 2].mean(), "ms_per_frame": v[:, 3].mean()}
        if base is not None:
            d = (v[:, :2] - base[:, :2]).mean(1)  # both test modes, paired by seed
            row["d_dice"], row["d_dice_std"] = d.mean(), d.std()
            row["time_vs_default"] = v[:, 2].mean() / base[:, 2].mean()
        rows.append(row)
    print_table(rows, [("method", "variant", ""), ("dice_linear", "Dice linear", ".3f"),
                       ("dice_linear_std", "sd", ".3f"), ("dice_sector", "Dice sector", ".3f"),
                       ("dice_sector_std", "sd", ".3f"), ("d_dice", "d Dice vs default", "+.3f"),
                       ("d_dice_std", "sd", ".3f"), ("params", "params", "d"),
                       ("time_vs_default", "fit time", ".2f")],
                title=f"\nASTR variants: {args.seeds} seeds, {n_train} linear videos of {n_frames} "
                      f"frames + scan augmentation, {epochs} epochs; tests on linear and sector "
                      "videos (d Dice: mean of both modes, paired by seed)")
    if args.json:
        write_json(args.json, "bench_astr_ablation", rows, args)


def main():
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--ablation", action="store_true",
                        help="measure the architecture variants instead (see the module doc)")
    parser.add_argument("--seeds", type=int, default=3, help="--ablation: number of seeds")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=None,
                        help="--ablation: variants to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.ablation:
        return ablation(args)
    n_train, n_frames, epochs = (16, 6, 12) if args.quick else (40, 8, 30)
    size = 32
    data = {m: make_ultrasound_videos(n_train, n_frames=n_frames,
                                      image_size=size, scan_mode=m, random_state=args.seed + k)
            for k, m in enumerate(("linear", "sector"))}
    # separate test videos of each mode
    test = {m: make_ultrasound_videos(n_train // 2, n_frames=n_frames, image_size=size,
                                      scan_mode=m, random_state=args.seed + 10 + k)
            for k, m in enumerate(("linear", "sector"))}
    rows, models = [], {}
    directions = [("linear", "sector")] + ([] if args.quick else [("sector", "linear")])
    for train_mode, test_mode in directions:
        X, M, _ = data[train_mode]
        for T, name in ((3, "ASTR (3 frames)"), (1, "single frame")):
            for aug in (False, True):
                t0 = time.perf_counter()
                est = ASTRSegmenter(T, scan_augment=aug, max_iter=epochs, random_state=args.seed,
                                    device="cpu").fit(X, M)
                fit_s = time.perf_counter() - t0
                Xt, Mt, _ = test[test_mode]
                same = est.score(*test[train_mode][:2])
                s = est.evaluate(Xt, Mt)
                rows.append({"method": name, "dataset": "synthetic ultrasound 32x32", "scan_augment": aug, "train": train_mode,
                             "test": test_mode, "dice_same_mode": same, **s, "fit_s": fit_s})
                models[(train_mode, T, aug)] = est
                print(f"  {name:16s} aug={aug!s:5s} {train_mode}->{test_mode}: "
                      f"Dice {s['dice']:.3f} (same mode {same:.3f})", flush=True)
    print_table(rows, [("method", "method", ""), ("scan_augment", "aug", ""),
                       ("train", "train", ""), ("test", "test", ""),
                       ("dice_same_mode", "Dice same mode", ".3f"), ("dice", "Dice", ".3f"),
                       ("iou", "IoU", ".3f"), ("sensitivity", "Sen", ".3f"),
                       ("specificity", "Spe", ".3f"), ("mae", "MAE", ".3f"),
                       ("fit_s", "fit s", ".1f")],
                title="\nDice on the opposite scanning mode (synthetic; paper: 77.6% on ERUS-10K)")

    # compute: sparse vs dense context, same weights
    est = models[("linear", 3, True)]
    Xt, Mt, _ = test["sector"]
    crow = []
    for ctx in ("sparse", "dense"):
        est.set_params(context=ctx)
        est.predict(Xt)  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            est.predict(Xt)
            times.append(time.perf_counter() - t0)
        crow.append({"method": f"ASTR {ctx} context", "dataset": "synthetic ultrasound 32x32", "tokens": float(est.context_tokens(Xt).mean()),
                     "ms_per_frame": 1000 * float(np.median(times)) / Mt[..., 0, 0].size,
                     "dice": est.score(Xt, Mt)})
    est.set_params(context="sparse")
    for r in crow:
        r["time_vs_dense"] = r["ms_per_frame"] / crow[1]["ms_per_frame"]
    print_table(crow, [("method", "method", ""), ("tokens", "context tokens/frame", ".1f"),
                       ("ms_per_frame", "ms/frame", ".2f"), ("time_vs_dense", "time vs dense", ".2f"),
                       ("dice", "Dice", ".3f")], title="\nInference per frame (1 thread)")

    os.makedirs(args.out, exist_ok=True)
    plt = pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        sub = [r for r in rows if r["train"] == "linear"]
        labels = [f"{r['method']}\n{'+ scan aug' if r['scan_augment'] else 'no aug'}" for r in sub]
        ax.bar(range(len(sub)), [r["dice"] for r in sub], color=["C0", "C0", "C1", "C1"][:len(sub)],
               alpha=0.9)
        ax.set_xticks(range(len(sub)), labels, fontsize=7)
        ax.set_ylabel("Dice on sector test videos")
        ax.set_title("Trained on linear scans, tested on sector scans", fontsize=9)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "astr_dice.png"), dpi=120)
        print(f"plot: {os.path.join(args.out, 'astr_dice.png')}")
    if args.json:
        write_json(args.json, "bench_astr", rows + crow, args)


if __name__ == "__main__":
    main()
