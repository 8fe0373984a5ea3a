"""Training loop, CLI, sweep and visualisation on tiny synthetic data (seconds, CPU)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from stylecam import contract
from tests.test_data_idx import make_idx_folder, make_pattern_images
from trainer import cli
from trainer import train_classifier as T
from trainer import visualize as V
from trainer.classifier_outputs import load_classifier
from trainer.data import Dataset, hold_out_validation
from trainer.nets.classifier import build_classifier
from trainer.nets.vgg import random_vgg_standin


def tiny_dataset(n=96, size=12, val=16) -> Dataset:
    """n pattern images, ``val`` of them held out as the validation split, and 32 test images."""
    x, y = make_pattern_images(n, size)
    tx, ty = make_pattern_images(32, size, seed=1)
    t = lambda a: torch.from_numpy(a).unsqueeze(1)  # noqa: E731
    return hold_out_validation(Dataset("mnist", [str(i) for i in range(4)], t(x), torch.from_numpy(y.astype(np.int64)),
                                       t(tx), torch.from_numpy(ty.astype(np.int64)), "memory"), val)


class Untouchable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError("the test split was read during training")

    def __getitem__(self, item):
        raise AssertionError("the test split was read during training")

    def __len__(self):
        raise AssertionError("the test split was read during training")


def mean_loss(model, data):
    norm = model.config
    with torch.no_grad():
        x = T.normalise(data.train_x.float(), list(norm.mean), list(norm.std))
        return torch.nn.functional.cross_entropy(model.eval()(x), data.train_y).item()


def test_one_cycle():
    assert T.one_cycle(0.0, 1.0, 0.2) == pytest.approx(0.1)
    assert T.one_cycle(0.2, 1.0, 0.2) == pytest.approx(1.0)
    assert T.one_cycle(0.6, 1.0, 0.2) == pytest.approx(0.5)
    assert T.one_cycle(1.0, 1.0, 0.2) == 0.0 and T.one_cycle(2.0, 1.0, 0.2) == 0.0


def test_augment_batch_shifts_and_mirrors():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    assert torch.equal(T.augment_batch(x, 0, False, gen), x)
    flipped = T.augment_batch(x, 0, True, gen)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    shifted = T.augment_batch(x, 2, False, gen)
    assert shifted.shape == x.shape
    gray = T.augment_batch(torch.full((4, 1, 5, 5), 7.0), 2, False, gen)
    assert set(gray.unique().tolist()) <= {0.0, 7.0}           # gray pads with black


def test_confusion_matrix():
    cm = T.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_a_few_steps_reduce_the_loss(optimizer):
    data = tiny_dataset()
    norm = data.normalisation()
    model = build_classifier("conv8-bn-pool-fc16", 1, 4, 12, 12, mean=norm["mean"], std=norm["std"])
    before = mean_loss(model, data)
    cfg = T.TrainConfig(epochs=4, batch_size=16, optimizer=optimizer, eval_every=2, label_smoothing=0.0)
    result = T.train(model, data, cfg, progress=False)
    assert mean_loss(model, data) < 0.7 * before
    assert len(data.train_y) == 80 and result.steps == 20 and result.epochs == pytest.approx(4.0)
    assert [round(e["epoch"]) for e in result.evals] == [2, 4] and "test_accuracy" not in result.evals[0]
    assert result.val_accuracy > 0.5 and result.val_predictions.shape == (16,)
    assert result.val_accuracy == pytest.approx(float((result.val_predictions == data.val_y.numpy()).mean()))


def test_training_never_reads_the_test_split():
    data = tiny_dataset()
    data.test_x, data.test_y = Untouchable(), Untouchable()
    model = build_classifier("conv4-pool-fc8", 1, 4, 12, 12)
    result = T.train(model, data, T.TrainConfig(epochs=2, batch_size=16, eval_every=1), progress=False)
    assert len(result.evals) == 2 and result.val_accuracy is not None


def test_the_validation_split_is_fixed_and_apart_from_the_training_images():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 2, 2).contiguous()
    full = Dataset("mnist", ["a"], images, torch.zeros(100, dtype=torch.int64), images[:3], torch.zeros(3, dtype=torch.int64),
                   "memory")
    a, b = hold_out_validation(full, 10), hold_out_validation(full, 10)
    assert torch.equal(a.val_x, b.val_x) and a.val_size == 10 and len(a.train_y) == 90
    ids = lambda x: set(x[:, 0, 0, 0].tolist())  # noqa: E731
    assert ids(a.val_x).isdisjoint(ids(a.train_x)) and ids(a.val_x) | ids(a.train_x) == set(range(100))
    assert ids(a.val_x) != set(range(10))                     # a permutation, not the first images
    assert torch.equal(a.test_x, full.test_x)
    assert not torch.equal(hold_out_validation(full, 10, seed=1).val_x, a.val_x)
    assert hold_out_validation(full, 0).val_size == 0
    with pytest.raises(T.UserError, match="does not fit 100 training images"):
        hold_out_validation(full, 100)


def test_time_budget_bounds_the_training_clock_and_leaves_evaluations_out(monkeypatch):
    """The clock stops within one step after the budget; evaluations between epochs are not on it.

    Each evaluation is made to take 10 s on the clock the trainer reads (the real one plus 10 s per
    evaluation), without waiting for them: had they been counted, the first would end the budget."""
    data = tiny_dataset(n=24)                                # 8 training images: one step an epoch
    model = build_classifier("conv4-pool-fc8", 1, 4, 12, 12)
    real_predict, extra = T.predict, {"seconds": 0.0}

    def slow_predict(*args, **kwargs):
        extra["seconds"] += 10.0
        return real_predict(*args, **kwargs)

    real_clock = time.perf_counter
    clock = lambda: real_clock() + extra["seconds"]  # noqa: E731
    monkeypatch.setattr(T, "predict", slow_predict)
    monkeypatch.setattr(T.time, "perf_counter", clock)
    started = clock()
    result = T.train(model, data, T.TrainConfig(time_budget=0.6, batch_size=8, augment=True, flip=True,
                                                eval_every=1), progress=False)
    wall = clock() - started
    evaluations = len(result.evals)                        # after each epoch within the budget, and the final one
    assert evaluations == result.steps >= 2
    assert 0.6 <= result.train_seconds <= 0.6 + result.longest_step_seconds + 1e-6
    assert 0 < result.longest_step_seconds < 0.6
    assert wall >= result.train_seconds + 10.0 * evaluations   # every evaluation's 10 s is off the clock


def test_cli_end_to_end(tmp_path, capsys):
    folder = make_idx_folder(tmp_path / "mnist")
    out = tmp_path / "run"
    rc = cli.main(["classifier", "--dataset", "mnist", "--data", str(folder), "--arch", "conv4-bn-pool-fc8",
                   "--epochs", "1", "--batch-size", "16", "--augment", "--out", str(out), "--name", "digits"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "total" in text and "(4, 12, 12)" in text and "validation accuracy" in text and "test accuracy" in text
    assert "58 train / 6 validation / 32 test" in text       # a tenth of the 64 training images held out
    for name in ("checkpoint.pt", "curves.png", "confusion.png", "report.json", "digits.onnx"):
        assert (out / name).is_file(), name
    assert cv2.imread(str(out / "confusion.png")) is not None
    report = json.loads((out / "report.json").read_text())
    meta = {p.key: p.value for p in onnx.load(str(out / "digits.onnx")).metadata_props}
    assert meta[contract.KEY_KIND] == "classifier" and meta[contract.KEY_NAME] == "digits"
    assert float(meta[contract.KEY_ACCURACY]) == pytest.approx(report["test_accuracy"], abs=1e-4)
    training = json.loads(meta[contract.KEY_TRAINING])
    assert training["val_size"] == report["val_size"] == 6 and training["val_accuracy"] == report["val_accuracy"]
    assert json.loads(meta[contract.KEY_NORMALISATION])["channels"] == "GRAY"
    assert report["confusion_split"] == "test" and sum(map(sum, report["confusion"])) == 32
    correct = sum(report["confusion"][i][i] for i in range(4))
    assert report["test_accuracy"] == pytest.approx(correct / 32)


@pytest.mark.parametrize("argv, message", [
    (["--arch", "conv4-bogus"], "bad token 'bogus'"),
    (["--data", "/nonexistent/place"], "mnist not found in /nonexistent/place"),
])
def test_cli_errors(tmp_path, capsys, argv, message):
    rc = cli.main(["classifier", "--dataset", "mnist", "--out", str(tmp_path), *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("stylecam-train: error:") and message in err and len(err.strip().splitlines()) == 1


def test_sweep_writes_table_json_and_plot(tmp_path, capsys):
    folder = make_idx_folder(tmp_path / "mnist", n_train=32, n_test=16)
    out = tmp_path / "sweep"
    rc = cli.main(["sweep", "--dataset", "mnist", "--data", str(folder), "--archs", "conv4-pool-fc8",
                   "--lrs", "0.1,0.01", "--batch-sizes", "16", "--optimizers", "sgd", "--epochs", "1",
                   "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["runs"]
    assert [(r["lr"], r["batch_size"], r["optimizer"]) for r in rows] == [(0.1, 16, "sgd"), (0.01, 16, "sgd")]
    assert results["val_size"] == 3 and all(0 <= r["val_accuracy"] <= 1 and "test_accuracy" not in r for r in rows)
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert results["best"]["folder"] == best["folder"] and results["best"]["val_accuracy"] == best["val_accuracy"]
    model, _ = load_classifier(out / best["folder"] / "checkpoint.pt")   # the one test measurement, redone
    from trainer.data import load_dataset
    data = load_dataset("mnist", str(folder))
    assert results["best"]["test_accuracy"] == pytest.approx(T.accuracy(model, data.test_x, data.test_y))
    table = (out / "results.md").read_text()
    assert table.count("| `conv4-pool-fc8` |") == 2 and "| 1 |" in table and "validation accuracy |" in table
    assert f"measured once after the sweep: {results['best']['test_accuracy']:.2%}" in table
    assert all(json.loads((out / r["folder"] / "report.json").read_text())["test_accuracy"] is None for r in rows)
    assert "best by validation" in capsys.readouterr().out
    assert cv2.imread(str(out / "sweep.png")) is not None


def test_sweep_rejects_bad_lists(tmp_path):
    assert cli.main(["sweep", "--dataset", "mnist", "--lrs", "0.1,x", "--out", str(tmp_path)]) == 2
    assert cli.main(["sweep", "--dataset", "mnist", "--optimizers", "rmsprop", "--out", str(tmp_path)]) == 2


def test_visualize_checkpoint_and_vgg(tmp_path, monkeypatch, capsys):
    """The PNGs hold the layer's real feature maps (one tile each) and the first layer's real kernels."""
    from stylecam.classify import Normalisation, preprocess
    data = tiny_dataset()
    out = tmp_path / "run"
    T.run_training(data, "conv6-bn-pool-conv4-fc8", T.TrainConfig(epochs=1, batch_size=32), out, "tiny",
                   progress=False, quiet=True, export=False)
    image = tmp_path / "photo.png"
    bgr = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(image), bgr)
    assert cli.main(["visualize", "--model", str(out / "checkpoint.pt"), "--layer", "conv2", str(image),
                     "--out", str(tmp_path / "vis")]) == 0
    model, ckpt = load_classifier(out / "checkpoint.pt")
    x = torch.from_numpy(preprocess(bgr, Normalisation.from_json(json.dumps(ckpt["normalisation"]))))
    with torch.no_grad():
        expected = model.body[2](model.body[1](model.body[0](x)))[0].numpy()     # conv1, pool1, conv2
    assert expected.shape == (4, 6, 6) and any(np.ptp(m) > 0 for m in expected)
    maps = cv2.imread(str(tmp_path / "vis" / "conv2_maps.png"))
    assert np.array_equal(maps, V.feature_grid(expected))                        # 2 x 2 tiles of 32 px
    assert maps.shape == (2 * 34 + 2, 2 * 34 + 2, 3)
    first = ckpt["state_dict"]["body.conv1.1.weight"].numpy()
    assert first.shape == (6, 1, 3, 3)
    assert np.array_equal(cv2.imread(str(tmp_path / "vis" / "filters.png")), V.filter_grid(first))
    assert "conv2: 4 maps of 6x6; first layer 6 filters 3x3" in capsys.readouterr().out
    assert cli.main(["visualize", "--model", str(out / "checkpoint.pt"), "--layer", "conv9", str(image)]) == 2
    assert "layers: conv1, pool1, conv2" in capsys.readouterr().err

    standin = random_vgg_standin(["relu2_1"], width=4)
    monkeypatch.setattr("trainer.nets.vgg.load_vgg16", lambda layers, w=None: standin)
    assert cli.main(["visualize", "--model", "vgg16", "--layer", "relu2_1", str(image),
                     "--out", str(tmp_path / "vgg")]) == 0
    rgb = cv2.resize(bgr, (280, 224), interpolation=cv2.INTER_AREA)[:, :, ::-1]          # short side 224
    with torch.no_grad():
        vgg = standin(torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32).copy())[None])["relu2_1"][0].numpy()
    assert vgg.shape == (8, 112, 140)
    assert np.array_equal(cv2.imread(str(tmp_path / "vgg" / "relu2_1_maps.png")), V.feature_grid(vgg))


def test_grids():
    grid = V.feature_grid(np.random.default_rng(0).normal(size=(5, 4, 4)), tile_size=10)
    assert grid.shape == (2 * 12 + 2, 3 * 12 + 2, 3) and grid.dtype == np.uint8
    rgb = V.filter_grid(np.random.default_rng(0).normal(size=(4, 3, 3, 3)), tile_size=6)
    assert rgb.shape == (2 * 8 + 2, 2 * 8 + 2, 3)


def test_vgg16_head_trains_and_keeps_backbone_frozen(tmp_path):
    data = tiny_dataset(size=16)
    vgg = random_vgg_standin(["relu2_2"], width=4)
    frozen = {k: v.clone() for k, v in vgg.state_dict().items()}
    report = T.run_training(data, "vgg16:relu2_2-fc16", T.TrainConfig(epochs=1, batch_size=32), tmp_path,
                            "vgghead", progress=False, quiet=True, vgg_extractor=vgg)
    assert all(torch.equal(frozen[k], v) for k, v in vgg.state_dict().items())
    assert report["onnx"].endswith("vgghead.onnx")
    model, ckpt = load_classifier(tmp_path / "checkpoint.pt")
    assert model.config.arch == "vgg16:relu2_2-fc16" and ckpt["classes"] == data.classes


def test_cifar_challenge_benchmark_runs_on_a_tiny_zip(tmp_path, monkeypatch):
    from benchmarks import cifar_challenge
    from tests.test_data_imagefolder import make_zip

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "challenge.json"
    rc = cifar_challenge.main(["--budgets", "0.2,0.4", "--arch", "conv4-bn-pool-fc8", "--batch-size", "4", "--threads", "1",
                               "--data", str(make_zip(tmp_path / "tiny.zip", per_class=(10, 4))), "--runs", str(tmp_path / "runs"),
                               "--val-size", "6", "--out", str(out), "--plot", str(tmp_path / "challenge.png")])
    assert rc == 0
    result = json.loads(out.read_text())
    settings = result["settings"]
    assert (settings["train_images"], settings["val_images"], settings["test_images"]) == (24, 6, 12)
    assert "excluded: dataset decoding (cached), warm-up, evaluations" in settings["clock"]
    assert [r["budget_s"] for r in result["results"]] == [0.2, 0.4]
    for r in result["results"]:
        # within one step of the budget: the clock stops after the step that reaches it
        assert r["budget_s"] <= r["train_seconds"] <= round(r["budget_s"] + r["longest_step_seconds"], 1) + 0.05
        report = json.loads((Path(r["run_folder"]) / "report.json").read_text())
        assert (r["test_accuracy"], r["val_accuracy"]) == (report["test_accuracy"], report["val_accuracy"])
        correct = sum(report["confusion"][i][i] for i in range(3))
        assert r["test_accuracy"] == pytest.approx(correct / 12) and sum(map(sum, report["confusion"])) == 12
        assert r["steps"] == report["training"]["steps"] >= 1
        assert len(r["load_average_start"]) == len(r["load_average_end"]) == 3
    assert result["machine"]["threads_used"] == 1 and "cpu" in result["machine"]
    assert len(result["machine"]["load_average_before"]) == 3
    assert cv2.imread(str(tmp_path / "challenge.png")) is not None


def _checkpoint_and_image(tmp_path):
    out = tmp_path / "run"
    T.run_training(tiny_dataset(), "conv4-pool-fc8", T.TrainConfig(epochs=1, batch_size=32), out, "tiny",
                   progress=False, quiet=True, export=False)
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return out / "checkpoint.pt", image


@pytest.mark.parametrize("target", ["proc", "file"])
def test_visualize_refuses_an_unwritable_out(tmp_path, capsys, target):
    ckpt, image = _checkpoint_and_image(tmp_path)
    (tmp_path / "regular").write_text("x")
    out = "/proc/x" if target == "proc" else str(tmp_path / "regular")
    assert cli.main(["visualize", "--model", str(ckpt), "--layer", "conv1", str(image), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylecam-train: error: cannot write to")


def test_visualize_max_maps_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["visualize", "--model", "vgg16", "--layer", "relu1_1", "x.png", "--max-maps", "0"])
    assert exc.value.code == 2 and "argument --max-maps" in capsys.readouterr().err
    with pytest.raises(Exception, match="nothing to draw"):
        V.tile_grid([], 8)


def test_visualize_missing_image_says_not_found(tmp_path, capfd):
    assert cli.main(["visualize", "--model", "vgg16", "--layer", "relu1_1", str(tmp_path / "nonexist.jpg"),
                     "--out", str(tmp_path / "o")]) == 2
    captured = capfd.readouterr()
    assert "image not found" in captured.err and "WARN" not in captured.err + captured.out
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [["--time-budget", "-1"], ["--time-budget", "nan"], ["--lr", "nan"], ["--lr", "0"],
                                  ["--epochs", "inf"], ["--label-smoothing", "2"], ["--label-smoothing", "1"],
                                  ["--weight-decay", "-1"], ["--batch-size", "0"], ["--eval-every", "-1"],
                                  ["--threads", "-2"], ["--seed", str(2 ** 70)], ["--name", "../evilc"],
                                  ["--name", ".hidden"]])
def test_cli_classifier_rejects_bad_values_at_parse_time(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["classifier", "--dataset", "mnist", "--out", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_config_from_args_refuses_nan_for_callers_without_argparse():
    import argparse
    base = dict(time_budget=None, epochs=1.0, batch_size=8, lr=None, weight_decay=None, label_smoothing=0.1,
                optimizer="sgd", augment=False, dataset="mnist", no_channels_last=False, precision="fp32",
                eval_every=1, seed=0)
    assert T.config_from_args(argparse.Namespace(**base)).epochs == 1.0
    for key, value in (("lr", float("nan")), ("time_budget", float("nan")), ("label_smoothing", 2.0)):
        with pytest.raises(T.UserError, match=f"--{key.replace('_', '-')}"):
            T.config_from_args(argparse.Namespace(**{**base, key: value}))


@pytest.mark.parametrize("target", ["out_proc", "out_file", "onnx_proc", "onnx_folder"])
def test_cli_classifier_checks_outputs_before_loading_data(tmp_path, capsys, target):
    (tmp_path / "regular").write_text("x")
    (tmp_path / "folder").mkdir()
    out = {"out_proc": ["--out", "/proc/x"], "out_file": ["--out", str(tmp_path / "regular")],
           "onnx_proc": ["--out", str(tmp_path / "o"), "--onnx", "/proc/x.onnx"],
           "onnx_folder": ["--out", str(tmp_path / "o"), "--onnx", str(tmp_path / "folder")]}[target]
    # --data does not exist: had the outputs not been checked first, the error would be about the data
    rc = cli.main(["classifier", "--dataset", "mnist", "--data", str(tmp_path / "nodata"), *out])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not found" not in err[0]
    assert ("cannot write to" in err[0]) if target != "onnx_folder" else ("is a folder" in err[0])
    assert list((tmp_path / "folder").iterdir()) == []


def test_cli_classifier_divergence_error_starts_its_own_line(tmp_path, capsys):
    folder = make_idx_folder(tmp_path / "mnist", n_train=32, n_test=16)
    rc = cli.main(["classifier", "--dataset", "mnist", "--data", str(folder), "--arch", "conv4-pool-fc8",
                   "--epochs", "1", "--batch-size", "8", "--lr", "1e30", "--label-smoothing", "0",
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "\nstylecam-train: error: training diverged" in err
    assert not (tmp_path / "o").exists()     # no temporary file, and the folder the run made is gone again


def test_classifier_outputs_get_the_usual_mode_and_no_temp_files(tmp_path):
    import os
    folder = make_idx_folder(tmp_path / "mnist", n_train=32, n_test=16)
    out = tmp_path / "run"
    assert cli.main(["classifier", "--dataset", "mnist", "--data", str(folder), "--arch", "conv4-pool-fc8",
                     "--epochs", "1", "--batch-size", "16", "--out", str(out), "--name", "d.v1",
                     "--onnx", str(tmp_path / "elsewhere" / "d.onnx")]) == 0
    mask = os.umask(0o022)
    os.umask(mask)
    files = [out / n for n in ("checkpoint.pt", "curves.png", "confusion.png", "report.json")]
    files.append(tmp_path / "elsewhere" / "d.onnx")
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~mask for f in files)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "confusion.png", "curves.png", "report.json"]


def _sweep(tmp_path, *argv, out=None):
    folder = make_idx_folder(tmp_path / "mnist", n_train=32, n_test=16)
    return cli.main(["sweep", "--dataset", "mnist", "--data", str(folder), "--archs", "conv4-pool-fc8",
                     "--batch-sizes", "8", "--optimizers", "sgd", "--epochs", "1",
                     "--out", str(out or tmp_path / "sweep"), *argv])


def test_sweep_records_a_diverged_run_and_goes_on(tmp_path, capsys):
    assert _sweep(tmp_path, "--lrs", "1e30,0.05") == 0
    rows = json.loads((tmp_path / "sweep" / "results.json").read_text())["runs"]
    assert [(r["lr"], r["status"]) for r in rows] == [(1e30, "diverged"), (0.05, "ok")]
    assert rows[0]["val_accuracy"] is None and "training diverged" in rows[0]["error"]
    assert 0 <= rows[1]["val_accuracy"] <= 1
    table = (tmp_path / "sweep" / "results.md").read_text()
    assert "| 1 | `conv4-pool-fc8` | sgd | 0.05 |" in table and "| diverged |" in table
    assert cv2.imread(str(tmp_path / "sweep" / "sweep.png")) is not None
    captured = capsys.readouterr()
    assert "best by validation: sgd lr=0.05" in captured.out and "1 of 2 runs diverged" in captured.err


def test_sweep_exits_1_when_every_run_diverged(tmp_path, capsys):
    assert _sweep(tmp_path, "--lrs", "1e30") == 1
    rows = json.loads((tmp_path / "sweep" / "results.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["diverged"]
    assert "1 of 1 runs diverged" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--batch-sizes", "0"], "e.g. --batch-sizes 64,128"),
    (["--batch-sizes", "16,x"], "e.g. --batch-sizes 64,128"),
    (["--lrs", "0.1,nan"], "e.g. --lrs 0.1,0.03"),
    (["--lrs", "-1"], "e.g. --lrs 0.1,0.03"),
    (["--lrs", ","], "--lrs is empty"),
])
def test_sweep_list_errors_name_the_option_and_fit_it(tmp_path, capsys, argv, message):
    assert cli.main(["sweep", "--dataset", "mnist", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and argv[0] in err[0]
    if argv[0] == "--batch-sizes":
        assert "0.1" not in err[0]


@pytest.mark.parametrize("argv", [["--time-budget", "nan"], ["--time-budget", "0"], ["--epochs", "-1"],
                                  ["--seed", "-1"], ["--threads", "x"]])
def test_sweep_rejects_bad_numbers_at_parse_time(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--dataset", "mnist", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["proc", "file"])
def test_sweep_checks_out_before_training(tmp_path, capsys, target):
    (tmp_path / "regular").write_text("x")
    out = "/proc/x" if target == "proc" else tmp_path / "regular"
    assert _sweep(tmp_path, "--lrs", "0.05", out=out) == 2
    captured = capsys.readouterr()
    assert "cannot write to" in captured.err and "[1/1]" not in captured.out


@pytest.mark.parametrize("command", ["quantize", "report", "sweep", "classifier", "visualize"])
def test_every_option_has_a_help_with_at_most_one_default(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    formatter = sub._get_formatter()
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        text = formatter._expand_help(action)
        assert text.lower().count("default") <= 1, f"{command} {action.option_strings}: {text}"


def test_choose_threads_uses_the_idle_cores_and_copes_without_a_load_average(monkeypatch):
    from trainer.train_classifier import choose_threads
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 1.0, 0.5), raising=False)
    assert choose_threads() == 5 and choose_threads(3) == 3
    monkeypatch.delattr(os, "getloadavg")          # Windows has none
    assert choose_threads() == 8
