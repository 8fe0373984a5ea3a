"""`stylecam-train zoo`: several styles trained together, the device photo pack, the bundle, batched Gatys."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecam.errors import UserError
from tests.fakes.training import LAYERS
from trainer import zoo as zoo_module
from trainer.cli import main as train_main
from trainer.gatys import gatys
from trainer.gatys_batch import gatys_styles
from trainer.losses import LossWeights, MultiStyleLoss, PerceptualLoss
from trainer.nets.vgg import load_vgg16, random_vgg_standin
from trainer.photo_pack import load_photo_pack, pack_photos
from trainer.zoo import ZooConfig, ZooStyle, ZooTrainer, train_zoo
from trainer.zoo_files import read_losses_zip
from trainer.zoo_bundle import load_bundle, part_paths, save_bundle

REPO = Path(__file__).resolve().parents[1]


def random_photos(count: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 36 + 4 * i, 52 - 4 * i), generator=g, dtype=torch.uint8) for i in range(count)]


def write_painting(path: Path, seed: int) -> Path:
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:40]
    stripes = ((xx * (seed + 1) + yy) // 4) % 2
    img = np.stack([stripes * 200 + 20, rng.integers(0, 255, (40, 40)), (1 - stripes) * 180], -1).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def make_two_styles(folder: Path) -> tuple[ZooStyle, ZooStyle]:
    """Two small paintings in ``folder`` and their styles (the second with its own weights)."""
    a = ZooStyle(name="stripes", style_image=str(write_painting(folder / "stripes.png", 0)), style_size=40)
    b = ZooStyle(name="noise", style_image=str(write_painting(folder / "noise.png", 3)), style_size=40,
                 style_weight=3e4, tv_weight=1e-6)
    return a, b


@pytest.fixture
def two_styles(tmp_path) -> tuple[ZooStyle, ZooStyle]:
    return make_two_styles(tmp_path)


def small_config(styles, data: str, **changes) -> ZooConfig:
    base = ZooConfig(styles=tuple(styles), data=data, variant="lite", size=32, batch_size=2, holdout=2,
                     device="cpu", precision="fp32", steps=3, log_every=1)
    return replace(base, **changes)


# ---- the photo pack ----

def test_crops_at_zoom_one_are_the_photos_own_pixels_and_flips_mirror_them():
    photos = random_photos()
    pack = pack_photos(photos, [])
    for step in range(4):
        indices, windows = pack.crop_windows(step, 3, seed=5, max_zoom=1.0)
        batch = pack.batch(step, 3, 32, seed=5, max_zoom=1.0)
        assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
        for row, index in enumerate(indices):
            top, left, side, flip = (int(v) for v in windows[row])
            photo = photos[index]
            assert side == min(photo.shape[1:]) == 32 or side == min(photo.shape[1:])
            if side != 32:
                continue
            expected = photo[:, top:top + 32, left:left + 32].float()
            if flip:
                expected = expected.flip(-1)
            torch.testing.assert_close(batch[row], expected, atol=1e-3, rtol=0)


def test_batches_depend_only_on_seed_and_step_and_zoom_stays_inside_the_photo():
    pack = pack_photos(random_photos(4), [])
    a = pack.batch(7, 4, 24, seed=1, max_zoom=1.5)
    b = pack.batch(7, 4, 24, seed=1, max_zoom=1.5)
    c = pack.batch(8, 4, 24, seed=1, max_zoom=1.5)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 255.0
    for step in range(20):
        indices, windows = pack.crop_windows(step, 4, seed=2, max_zoom=1.5)
        for row, index in enumerate(indices):
            h, w = (int(v) for v in pack.sizes[index])
            top, left, side, _ = windows[row].tolist()
            assert min(h, w) / 1.5 - 1e-6 <= side <= min(h, w)
            assert top >= 0 and left >= 0 and top + side <= h + 1e-9 and left + side <= w + 1e-9
            assert top == int(top) and left == int(left)


def test_photo_pack_holds_every_photo_as_one_uint8_tensor(tiny_photos):
    pack = load_photo_pack(tiny_photos, 32, holdout=2)
    assert pack.images.dtype == torch.uint8 and pack.images.shape[0] == 6 and len(pack.holdout) == 2
    assert pack.sizes.tolist() == [[32, 42]] * 6     # 40x52 photos, short side 32
    with pytest.raises(UserError, match="readable"):
        load_photo_pack(tiny_photos, 32, holdout=8)


# ---- the loss ----

def test_multi_style_loss_equals_each_styles_perceptual_loss():
    torch.manual_seed(0)
    net = random_vgg_standin(LAYERS)
    paintings = [torch.rand(1, 3, 40, 56) * 255, torch.rand(1, 3, 48, 32) * 255]
    weights = [LossWeights(style=1e5), LossWeights(style=3e4, tv=1e-6, content=2.0,
                                                   style_layers={"relu1_2": 0.5, "relu3_3": 1.0})]
    loss = MultiStyleLoss(net, paintings, weights)
    content = torch.rand(3, 3, 32, 32) * 255
    outputs = torch.rand(6, 3, 32, 32) * 255
    terms = loss.terms(outputs, content)
    assert terms["total"].shape == (2,)
    for k in range(2):
        alone = PerceptualLoss(net, paintings[k], weights[k]).terms(outputs[3 * k:3 * k + 3], content)
        for key in ("content", "style", "tv", "total"):
            torch.testing.assert_close(terms[key][k], alone[key], rtol=1e-5, atol=1e-6)


# ---- training together vs alone ----

def test_two_styles_trained_together_end_as_each_trained_alone(two_styles, tmp_path):
    net = random_vgg_standin(LAYERS)
    pack = pack_photos(random_photos(5), [])
    cfg = small_config(two_styles, data="unused")
    together = ZooTrainer(cfg, pack, net, torch.device("cpu"))
    for _ in range(3):
        together.step()
    for k, style in enumerate(two_styles):
        alone = ZooTrainer(replace(cfg, styles=(style,)), pack, net, torch.device("cpu"))
        for _ in range(3):
            alone.step()
        for (key, a), b in zip(alone.nets[0].state_dict().items(), together.nets[k].state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"{style.name} {key}")
    # and the two styles really did learn different things
    first, second = (n.state_dict() for n in together.nets)
    assert any(not torch.allclose(first[key], second[key]) for key in first)


# ---- the bundle ----

def test_bundle_round_trip_in_parts_and_stale_parts_are_removed(tmp_path):
    bundle = {"kind": "stylecam-zoo", "format": 1, "styles": {"a": {"weights": {"w": torch.arange(30000.).half()}}},
              "step": 3}
    written = save_bundle(bundle, tmp_path / "zoo.pt", split_bytes=20000)
    assert len(written) >= 3 and written == part_paths(tmp_path / "zoo.pt") and not (tmp_path / "zoo.pt").exists()
    assert all(p.stat().st_size <= 20000 for p in written)
    loaded = load_bundle(tmp_path / "zoo.pt")
    assert torch.equal(loaded["styles"]["a"]["weights"]["w"], bundle["styles"]["a"]["weights"]["w"])
    small = {**bundle, "styles": {}}
    assert save_bundle(small, tmp_path / "zoo.pt", split_bytes=20000) == [tmp_path / "zoo.pt"]
    assert part_paths(tmp_path / "zoo.pt") == [] and load_bundle(tmp_path / "zoo.pt")["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["zoo.pt"]     # no temporary file left


class _Marker:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_bundle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    crafted = tmp_path / "zoo.pt"
    torch.save({"kind": "stylecam-zoo", "format": 1, "evil": _Marker(str(marker))}, crafted, pickle_protocol=2)
    with pytest.raises(UserError, match="cannot read zoo bundle"):
        load_bundle(crafted)
    assert not marker.exists()
    code = train_main(["zoo", "--resume", str(crafted), "--data", str(tmp_path), "--steps", "1"])
    assert code == 2 and not marker.exists()
    plain = tmp_path / "other.pt"
    torch.save({"kind": "something else"}, plain)
    with pytest.raises(UserError, match="not a stylecam zoo bundle"):
        load_bundle(plain)
    with pytest.raises(UserError, match="not found"):
        load_bundle(tmp_path / "missing.pt")


def test_resume_from_a_full_state_bundle_continues_exactly(two_styles, tiny_photos, tmp_path, monkeypatch):
    net = random_vgg_standin(LAYERS)
    monkeypatch.setattr(zoo_module, "load_vgg16", lambda layers, path=None: net)
    cfg = small_config(two_styles, str(tiny_photos), steps=4, weights_dtype="fp32", save_optimizer=True,
                       out=str(tmp_path / "straight"))
    train_zoo(cfg, progress=False, log=lambda m: None)
    half = replace(cfg, steps=2, out=str(tmp_path / "resumed"))
    train_zoo(half, progress=False, log=lambda m: None)
    bundle = load_bundle(tmp_path / "resumed" / "zoo.pt")
    assert bundle["step"] == 2
    summary = train_zoo(replace(half, steps=4), resume=bundle, progress=False, log=lambda m: None)
    assert summary["step"] == 4 and summary["crops_seen"] == {"stripes": 8, "noise": 8}
    straight = load_bundle(tmp_path / "straight" / "zoo.pt")
    resumed = load_bundle(tmp_path / "resumed" / "zoo.pt")
    for name in ("stripes", "noise"):
        for key, value in straight["styles"][name]["weights"].items():
            torch.testing.assert_close(resumed["styles"][name]["weights"][key], value, rtol=1e-5, atol=1e-6)
        assert [e["step"] for e in resumed["styles"][name]["history"]] == [1, 2, 3, 4]


def test_an_fp16_bundle_resumes_with_the_weights_it_holds(two_styles, tiny_photos, tmp_path, monkeypatch):
    net = random_vgg_standin(LAYERS)
    monkeypatch.setattr(zoo_module, "load_vgg16", lambda layers, path=None: net)
    cfg = small_config(two_styles, str(tiny_photos), steps=2, out=str(tmp_path / "run"))
    train_zoo(cfg, progress=False, log=lambda m: None)
    bundle = load_bundle(tmp_path / "run" / "zoo.pt")
    weights = bundle["styles"]["noise"]["weights"]
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert "optimizer" not in bundle["styles"]["noise"]
    trainer = ZooTrainer(cfg, load_photo_pack(tiny_photos, 32, 2), net, torch.device("cpu"), resume=bundle)
    assert trainer.step_index == 2 and trainer.crops_seen["noise"] == 4
    for key, value in trainer.nets[1].state_dict().items():
        assert torch.equal(value, weights[key].float())


# ---- the command ----

def test_zoo_command_writes_bundle_logs_sheet_summary_and_gatys(two_styles, tiny_photos, tmp_path, monkeypatch):
    net = random_vgg_standin(LAYERS)
    monkeypatch.setattr(zoo_module, "load_vgg16", lambda layers, path=None: net)
    paintings = Path(two_styles[0].style_image).parent
    out = tmp_path / "zoo"
    code = train_main(["zoo", "--styles-dir", str(paintings), "--data", str(tiny_photos), "--config", "lite",
                       "--size", "32", "--batch-size", "2", "--steps", "3", "--holdout", "2", "--device", "cpu",
                       "--style-size", "40", "--set", "noise.style_weight=3e4", "--log-every", "2",
                       "--out", str(out), "--gatys-photos", str(tiny_photos), "--gatys-steps", "2",
                       "--gatys-size", "32"])
    assert code == 0
    bundle = load_bundle(out / "zoo.pt")
    assert set(bundle["styles"]) == {"noise", "stripes"} and bundle["step"] == 3
    assert bundle["styles"]["noise"]["settings"]["style_weight"] == 3e4
    assert bundle["styles"]["stripes"]["settings"]["style_weight"] == 1e5
    logs = read_losses_zip(out / "losses.zip")
    assert set(logs) == {"noise", "stripes"} and [e["step"] for e in logs["noise"]] == [1, 2, 3]
    assert all(np.isfinite(e["total"]) and e["total"] > 0 for e in logs["stripes"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["crops_seen"] == {"noise": 6, "stripes": 6} and summary["throughput"]["images_per_s"] > 0
    assert summary["throughput"]["steps"] == 2          # the first step (warm-up) is left out
    import cv2
    sheet = cv2.imread(str(out / "sheet.jpg"))
    assert sheet is not None and sheet.shape[1] > 3 * 200   # photo + 2 styles per row
    with tarfile.open(out / "gatys.tar") as archive:
        names = sorted(archive.getnames())
        record = json.loads(archive.extractfile("gatys.json").read())
    assert len([n for n in names if n.startswith("noise/")]) == 8 and "stripes/07.jpg" in names
    assert record["steps"] == 2 and len(record["photos"]) == 8
    assert all(set(p["terms"]) == {"noise", "stripes"} for p in record["photos"])


def test_zoo_command_errors_are_one_line_with_a_hint(tmp_path, tiny_photos, capsys):
    (tmp_path / "paintings").mkdir()
    write_painting(tmp_path / "paintings" / "wave.png", 0)
    cases = [
        (["--styles-dir", str(tmp_path / "nowhere")], "painting folder not found"),
        (["--styles-dir", str(tmp_path / "paintings"), "--styles", "muse"], "no painting for muse"),
        (["--styles-dir", str(tmp_path / "paintings"), "--set", "muse.style_weight=1"], "not one of the styles"),
        (["--styles-dir", str(tmp_path / "paintings"), "--set", "wave.color=1"], "NAME.SETTING=VALUE"),
        (["--styles-dir", str(tmp_path / "paintings")], "no end given"),
        ([], "no paintings given"),
    ]
    for extra, message in cases:
        code = train_main(["zoo", "--data", str(tiny_photos), *extra])
        err = capsys.readouterr().err
        assert code == 2, extra
        assert message in err and "Traceback" not in err, (extra, err)


# ---- batched Gatys ----

def test_batched_gatys_takes_the_steps_lbfgs_takes_for_each_image_alone():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)      # float64: the same steps must give the same images exactly
    try:
        torch.manual_seed(0)
        net = random_vgg_standin(LAYERS)
        paintings = [torch.rand(1, 3, 40, 56) * 255, torch.rand(1, 3, 48, 32) * 255]
        weights = [LossWeights(style=1e5), LossWeights(style=3e4, tv=1e-6, content=2.0)]
        content = (torch.rand(1, 3, 32, 48) * 255).round()
        images, terms = gatys_styles(content, MultiStyleLoss(net, paintings, weights), steps=60)   # > 50 pairs: the history rolls over
        assert images.shape == (2, 3, 32, 48) and images.dtype == torch.uint8
        for k in range(2):
            alone, history = gatys(content, paintings[k], weights[k], steps=60, loss_net=net, progress=False)
            assert torch.equal(images[k], alone)
            assert terms["total"][k] == pytest.approx(history[-1]["total"], rel=1e-9)
            assert history[-1]["total"] < 0.5 * history[0]["total"]      # it optimised
    finally:
        torch.set_default_dtype(previous)


# ---- the GPU preparation ----

def test_vgg_weights_up_to_relu4_3_in_float16_load_and_match(tmp_path, vgg_weights_path):
    if vgg_weights_path is None:
        pytest.skip("needs STYLECAM_VGG16 (real VGG-16 weights)")
    from benchmarks.gpu_zoo_carry import vgg_up_to
    state = torch.load(vgg_weights_path, map_location="cpu", weights_only=True)
    small = tmp_path / "vgg_fp16.pth"
    torch.save(vgg_up_to(state), small)
    assert small.stat().st_size < 16 * 2 ** 20
    full = load_vgg16(LAYERS, vgg_weights_path)
    half = load_vgg16(LAYERS, small)
    x = torch.rand(1, 3, 64, 64) * 255
    a, b = full(x), half(x)
    for layer in LAYERS:
        assert (a[layer] - b[layer]).abs().max() <= 1e-2 * a[layer].abs().max()
    with pytest.raises(UserError, match="does not match"):
        load_vgg16(["relu5_3"], small)          # deeper than the file holds


def test_gpu_zoo_script_stops_in_seconds_without_its_carried_data(tmp_path):
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_zoo.sh"), str(tmp_path / "out"), "--cpu-check"],
                            env={**os.environ, "ZOO_CARRY": str(tmp_path / "nothing"), "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert "python -m benchmarks.gpu_zoo_carry" in result.stdout + result.stderr
    assert (tmp_path / "out" / "run.log").is_file()
