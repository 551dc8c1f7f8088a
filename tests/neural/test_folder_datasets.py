"""Lazy folder datasets: the same items as the in-memory loaders, and the same fitted model."""

import json

import numpy as np
import pytest
import torch

from _small import data, make
from neural.datasets import (
    ImageFolderDataset,
    JSONLinesTextDataset,
    SegmentationFolderDataset,
    TextFolderDataset,
    VideoFolderDataset,
)
from neural.segmentation import load_segmentation_folder
from neural.text import load_text_jsonl
from neural.video import load_ultrasound_folder

Image = pytest.importorskip("PIL.Image")


def to_png(a):
    """An 8-bit image of values in [0, 1] (C, H, W) or (H, W)."""
    a = np.asarray(a)
    a = a.transpose(1, 2, 0) if a.ndim == 3 else a
    return Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8).squeeze())


def same_fit(a, b):
    for (k, va), vb in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.loss_curve_ == b.loss_curve_


def test_image_folder_fit_equals_in_memory_fit(tmp_path):
    X, y, _ = data("local")
    names = np.array(["bar", "cross", "disk", "dots", "hbar", "plus", "ring", "sq", "vbar", "x"])
    for i, (img, label) in enumerate(zip(X, names[y])):
        (tmp_path / label).mkdir(exist_ok=True)
        to_png(img).save(tmp_path / label / f"{i:03d}.png")
    ds = ImageFolderDataset(tmp_path)
    assert ds.classes == sorted(names) and len(ds) == len(X)
    X_mem = np.stack([ds[i][0] for i in range(len(ds))])
    y_mem = np.asarray([ds[i][1] for i in range(len(ds))])
    assert X_mem.shape == X.shape and X_mem.dtype == np.float32
    np.testing.assert_allclose(X_mem, X[np.argsort([f"{names[c]}/{i:03d}"
                                                     for i, c in enumerate(y)])], atol=1 / 255)
    from_folder = make("local", max_iter=2).fit(ds)
    in_memory = make("local", max_iter=2).fit(X_mem, y_mem)
    same_fit(from_folder, in_memory)
    np.testing.assert_array_equal(from_folder.classes_, in_memory.classes_)
    with pytest.raises(ValueError, match="not a folder"):
        ImageFolderDataset(tmp_path / "nope")


def test_segmentation_folder_fit_equals_loaded_fit(tmp_path):
    X, M, _ = data("dtop")
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    for i in range(len(X)):
        to_png(X[i]).save(tmp_path / "img" / f"a{i:02d}.png")
        Image.fromarray(M[i].astype(np.uint8), mode="L").save(tmp_path / "mask" / f"a{i:02d}.png")
    ds = SegmentationFolderDataset(tmp_path / "img", tmp_path / "mask")
    X_mem, M_mem = load_segmentation_folder(tmp_path / "img", tmp_path / "mask")
    np.testing.assert_array_equal(M_mem, M)
    from_folder = make("dtop", max_iter=1, finetune_iter=1).fit(ds)
    in_memory = make("dtop", max_iter=1, finetune_iter=1).fit(X_mem, M_mem)
    same_fit(from_folder, in_memory)
    assert from_folder.masks_ndim_ == 3


def test_video_folder_fit_equals_loaded_fit(tmp_path):
    X, M, _ = data("astr")
    for v in range(len(X)):
        for sub in ("frames", "masks"):
            (tmp_path / f"v{v}" / sub).mkdir(parents=True)
        for t in range(X.shape[1]):
            to_png(X[v, t]).save(tmp_path / f"v{v}" / "frames" / f"{t:03d}.png")
            np.save(tmp_path / f"v{v}" / "masks" / f"{t:03d}.npy", M[v, t].astype(np.uint8))
    ds = VideoFolderDataset(tmp_path)
    vids, masks, names = load_ultrasound_folder(tmp_path)
    assert names == ds.names and len(ds) == len(vids)
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds[i][0], vids[i])
    # scan-mode copies of every video, detected modes, normalisation: all read lazily
    from_folder = make("astr", max_iter=2).fit(ds)
    in_memory = make("astr", max_iter=2).fit(vids, masks)
    assert (from_folder.mean_, from_folder.std_) == (in_memory.mean_, in_memory.std_)
    same_fit(from_folder, in_memory)
    np.testing.assert_array_equal(from_folder.predict(vids)[0], in_memory.predict(vids)[0])


def test_text_datasets_fit_equals_in_memory_fit(tmp_path):
    X, y, fit_params = data("p2c")
    labels = np.array(["anger", "joy", "fear"])[y]
    for i, (text, label) in enumerate(zip(X, labels)):
        (tmp_path / "texts" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "texts" / label / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    ds = TextFolderDataset(tmp_path / "texts")
    order = np.argsort([f"{lab}/{i:04d}" for i, lab in enumerate(labels)], kind="stable")
    texts = [ds[i][0] for i in range(len(ds))]
    assert texts == list(X[order])
    soft = fit_params["soft_labels"][order]
    # columns of soft labels follow np.unique of the (string) labels
    soft = soft[:, np.argsort(["anger", "joy", "fear"])]
    from_folder = make("p2c", max_iter=2).fit(ds, soft_labels=soft)
    in_memory = make("p2c", max_iter=2).fit(texts, ds.targets, soft_labels=soft)
    same_fit(from_folder, in_memory)
    assert from_folder.vocabulary_ == in_memory.vocabulary_

    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": int(c)}) for t, c in zip(X, y))
                    + "\n\n")
    jl = JSONLinesTextDataset(path)
    loaded = load_text_jsonl(path)
    assert [jl[i] for i in range(3)] == list(zip(loaded.texts[:3], loaded.y[:3]))
    same_fit(make("p2c", max_iter=1).fit(jl), make("p2c", max_iter=1).fit(loaded.texts, loaded.y))
