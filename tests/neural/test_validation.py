"""Bad values get the documented errors: parameters, float32 range, unreadable model files."""

import io
import os
import pickle

import numpy as np
import pytest
import torch

from _small import NAMES, data, make
from neural import LocalLearningClassifier
from neural._validation import InvalidParameterError


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_constraint(name):
    est = make(name)
    assert set(est.get_params()) <= set(type(est)._parameter_constraints)


def numeric_params(name):
    est = make(name)
    out = [p for p, v in est.get_params().items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and p != "verbose"]
    return out + [p for p in ("finetune_learning_rate", "max_vocab") if p in est.get_params()]


@pytest.mark.parametrize("name, param", [(n, p) for n in NAMES for p in numeric_params(n)])
def test_nan_and_infinity_are_rejected_naming_the_parameter(name, param):
    X, y, fit_params = data(name)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
            make(name, **{param: bad}).fit(X, y, **fit_params)


@pytest.mark.parametrize("param, value", [("angle", np.nan), ("inner_radius", np.inf),
                                          ("outer_radius", np.nan), ("apex", (np.nan, 3.0)),
                                          ("to", "fan")])
def test_scan_mode_converter_parameters(param, value):
    from neural.video import ScanModeConverter, fan_geometry

    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        ScanModeConverter(**{param: value}).fit_transform(np.ones((2, 8, 8)))
    if param != "to":
        with pytest.raises(ValueError, match="must be finite"):
            fan_geometry((8, 8), **{param: value})


def test_parameter_errors_are_value_errors_with_the_allowed_values():
    X, y, _ = data("local")
    with pytest.raises(ValueError, match=r"'learning_rate_init' parameter .* finite float in the "
                                         r"range \(0\.0, inf\)\. Got nan"):
        make("local", learning_rate_init=float("nan")).fit(X, y)
    with pytest.raises(ValueError, match="'infopro_lambdas' parameter"):
        make("local", infopro_lambdas=(1.0, 1.0, float("inf"), 1.0)).fit(X, y)
    with pytest.raises(ValueError, match="'device' parameter"):
        make("local", device="tpu").fit(X, y)


@pytest.mark.parametrize("name", ["local", "dtop", "astr"])
def test_float_input_beyond_float32_is_rejected(name):
    X, y, _ = data(name)
    big = np.asarray(X, dtype=np.float64).copy()
    big.reshape(-1)[0] = 1e39
    with pytest.raises(ValueError, match="outside the float32 range"):
        make(name, max_iter=1).fit(big, y)


def test_dataset_item_beyond_float32_is_rejected():
    X, y, _ = data("local")
    big = X.astype(np.float64)
    big[3, 0, 0, 0] = -1e300

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return len(big)

        def __getitem__(self, i):
            return big[i], y[i]

    with pytest.raises(ValueError, match="item 3 of the dataset .* float32 range"):
        make("local", max_iter=1).fit(Items())


# --------------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, y, _ = data("local")
    path = tmp_path_factory.mktemp("m") / "model.pt"
    make("local", max_iter=1).fit(X, y).save(path)
    return path


def bad_files(saved, folder):
    raw = open(saved, "rb").read()
    payload = torch.load(saved, weights_only=True)
    files = {}

    def write(name, data):
        path = folder / name
        path.write_bytes(data)
        files[name] = path

    write("empty.pt", b"")
    write("truncated.pt", raw[: len(raw) // 2])
    write("random.pt", np.random.RandomState(0).bytes(4096))
    buffer = io.BytesIO()
    torch.save({k: v for k, v in payload.items() if k != "state_dict"}, buffer)
    write("wrong_keys.pt", buffer.getvalue())
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    write("foreign.pt", buffer.getvalue())
    nan = dict(payload, state_dict=dict(payload["state_dict"]))
    key = next(k for k, v in nan["state_dict"].items() if v.is_floating_point())
    nan["state_dict"][key] = nan["state_dict"][key].clone().fill_(float("nan"))
    buffer = io.BytesIO()
    torch.save(nan, buffer)
    write("nan.pt", buffer.getvalue())
    write("code.pt", pickle.dumps(os.system, protocol=2))  # weights_only refuses to unpickle code
    files["missing.pt"] = folder / "missing.pt"
    return files


PROBLEMS = {
    "missing.pt": "no such file",
    "empty.pt": "empty",
    "truncated.pt": "not a readable model file",
    "random.pt": "not a readable model file",
    "code.pt": "not a readable model file",
    "wrong_keys.pt": "lacks the entries",
    "foreign.pt": "not written by",
    "nan.pt": "non-finite weights",
}


def test_every_unreadable_file_raises_one_value_error_naming_file_and_problem(saved, tmp_path):
    files = bad_files(saved, tmp_path)
    for name, problem in PROBLEMS.items():
        with pytest.raises(ValueError, match=problem) as info:
            LocalLearningClassifier.load(files[name])
        assert name in str(info.value)
        X, y, _ = data("local")
        with pytest.raises(ValueError, match=problem):
            make("local", max_iter=2).fit(X, y, resume_from=files[name])
    # the good file loads, and into the right class only
    assert LocalLearningClassifier.load(saved).n_iter_ == 1
    from neural import DToPSegmenter

    with pytest.raises(ValueError, match="load it with that class"):
        DToPSegmenter.load(saved)


def test_weights_that_do_not_fit_the_model(saved, tmp_path):
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"] = {k: v[..., :1] if v.ndim else v
                             for k, v in payload["state_dict"].items()}
    torch.save(payload, tmp_path / "shapes.pt")
    with pytest.raises(ValueError, match="weights do not fit the model"):
        LocalLearningClassifier.load(tmp_path / "shapes.pt")
