"""Diffusion generators and recipes, end to end on a tiny Stable Diffusion (CPU, random weights).

The tiny model has SD 1.5's architecture at toy size (32 px), so the real code paths run: the
recipe fine-tunes it, the registry loads the saved folder, the generator samples with it, the
sharding merges processes. References: the loss of a fixed recipe must fall; saved weights must
equal the trained ones (the last accelerate checkpoint); frozen parts must equal the base files;
a multi-process run must equal a single-process one byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
from safetensors.torch import load_file  # noqa: E402

from usbench.cli import main  # noqa: E402
from usbench.datasets.splits import split  # noqa: E402
from usbench.errors import InputError, UsbenchError, WeightsError  # noqa: E402
from usbench.generators import GenerationRequest, build_generator  # noqa: E402
from usbench.generators.checkpoints import CARD_FILE, OutOfMemory, folder_digest, out_of_memory_error  # noqa: E402
from usbench.generators.diffusion import to_gray_uint8  # noqa: E402
from usbench.generators.tiny import save_tiny_sd, tiny_tokenizer  # noqa: E402
from usbench.imageset import ImageSet, ImageSetWriter  # noqa: E402
from usbench.recipes import finetune_controlnet, finetune_sd, recipe_config  # noqa: E402
from usbench.recipes.data import TrainingData  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FAST = dict(progress=False, gradient_checkpointing=False)


def make_training_set(out: Path, n: int = 9, size: int = 64, seed: int = 0) -> Path:
    """Textured images (gamma speckle) with a dark round lesion for benign/malignant, none for normal."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    with ImageSetWriter(out, source="toy") as w:
        for i in range(n):
            label = ("benign", "malignant", "normal")[i % 3]
            img = rng.gamma(2.0, 30, (size, size))
            mask = None
            if label != "normal":
                cy, cx = rng.integers(16, size - 16, 2)
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < int(rng.integers(6, 14)) ** 2
                img[mask] *= 0.2 if label == "benign" else 0.5
            w.add(f"img{i:02d}", np.clip(img, 0, 255).astype(np.uint8), label=label, mask=mask)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny SD, a small training set, and a fine-tuned SD (20 steps) shared by the module."""
    root = tmp_path_factory.mktemp("diffusion")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("USBENCH_CACHE", str(root / "cache"))
        base = save_tiny_sd(root / "tiny-sd")
        data = make_training_set(root / "data")
        result = finetune_sd(recipe_config(
            "sd-busi", data=str(data), base=str(base), out=str(root / "sd-ft"), steps=20, lr=1e-3, batch_size=2,
            checkpoint_every=10, **FAST,
        ))
    return {"root": root, "base": base, "data": data, "sd": root / "sd-ft", "result": result}


def requests(n: int = 3, size: int = 48, seed: int = 0) -> list[GenerationRequest]:
    labels = ("benign", "malignant", "normal")
    return [GenerationRequest(id=f"r{i}", label=labels[i % 3], seed=seed + i, size=size) for i in range(n)]


def unet_tensors(folder: Path, sub: str = "unet") -> dict:
    return load_file(str(folder / sub / "diffusion_pytorch_model.safetensors"))


def assert_same_up_to_rounding(a: np.ndarray, b: np.ndarray) -> None:
    """Same seed in another batch: the same image, but batched convolutions may round differently,
    so a few pixels may differ by one gray level (a wrong seed changes almost every pixel)."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------------------------
# Stable Diffusion recipe and generator


def test_sd_finetune_loss_falls_and_card_records_the_run(work):
    losses = work["result"].losses
    assert len(losses) == 20
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])  # a broken optimiser step would keep ~1.0
    card = json.loads((work["sd"] / CARD_FILE).read_text())
    full = ImageSet.read(work["data"])
    expected_split = split(full, scheme="seeded", test_fraction=0.2, seed=0, check_leaks=False)
    assert card["data"]["content_hash"] == full.content_hash()
    assert card["data"]["train_content_hash"] == expected_split.train.content_hash()
    assert card["split"]["scheme"] == "seeded" and card["split"]["test_ids"] == expected_split.test.ids
    assert card["steps"] == 20 and card["hyperparameters"]["lr"] == 1e-3
    assert card["final_loss"] == pytest.approx(np.mean(losses[-20:]))
    assert card["labels"] == ["normal", "benign", "malignant"]
    assert card["prompts"][1] == "Ultrasound image of benign breast"
    from importlib.metadata import version

    assert card["versions"]["torch"] == version("torch") and card["versions"]["diffusers"] == version("diffusers")
    assert (work["sd"] / "README.md").read_text().startswith("# sd-busi")


def test_saved_model_is_the_trained_one_and_frozen_parts_are_the_base(work):
    # The final accelerate checkpoint holds the trained UNet's state: the published folder must equal it.
    trained = load_file(str(work["sd"] / "checkpoints" / "step-000020" / "model.safetensors"))
    assert_same_tensors(unet_tensors(work["sd"]), trained)
    assert not torch.equal(unet_tensors(work["sd"])["conv_in.weight"], unet_tensors(work["base"])["conv_in.weight"])
    # Text encoder and VAE are frozen in the paper's recipe.
    assert_same_tensors(load_file(str(work["sd"] / "vae" / "diffusion_pytorch_model.safetensors")),
                        load_file(str(work["base"] / "vae" / "diffusion_pytorch_model.safetensors")))
    assert_same_tensors(load_file(str(work["sd"] / "text_encoder" / "model.safetensors")),
                        load_file(str(work["base"] / "text_encoder" / "model.safetensors")))


def test_sd_generator_seeds_batches_and_reload(work):
    gen = build_generator("sd-busi", {"model": str(work["sd"]), "steps": 2, "batch_size": 3})
    reqs = requests(5)
    images = list(gen.generate(reqs))
    assert all(im.dtype == np.uint8 and im.shape == (48, 48) for im in images)
    assert images[0].std() > 0
    # Same seed → same image, whatever else is in the batch (batch 1, reversed order).
    single = build_generator("sd-busi", {"model": str(work["sd"]), "steps": 2, "batch_size": 1})
    again = list(single.generate(reqs[::-1]))[::-1]
    for a, b in zip(images, again):
        assert_same_up_to_rounding(a, b)
    np.testing.assert_array_equal(list(gen.generate(reqs))[4], images[4])  # same batch: bit-identical
    assert not np.array_equal(images[0], images[3])  # same label, other seed
    # The fine-tuned weights matter: the base gives other pixels for the same request.
    base = build_generator("sd-busi", {"model": str(work["base"]), "steps": 2})
    assert not np.array_equal(next(base.generate(reqs[:1])), images[0])
    # A copy of the folder reloads to identical outputs and the same fingerprint.
    copy = work["root"] / "sd-copy"
    shutil.copytree(work["sd"], copy, ignore=shutil.ignore_patterns("checkpoints"))
    reloaded = build_generator("sd-busi", {"model": str(copy), "steps": 2})
    np.testing.assert_array_equal(next(reloaded.generate(reqs[:1])), images[0])
    assert reloaded.fingerprint() == gen.fingerprint()
    assert build_generator("sd-busi", {"model": str(copy), "steps": 3}).fingerprint() != gen.fingerprint()


def test_prompt_per_label_and_explicit_prompt(work):
    gen = build_generator("sd-busi", {"model": str(work["sd"]), "steps": 2})
    by_label = next(gen.generate([GenerationRequest("a", "benign", 7, 32)]))
    by_prompt = next(gen.generate([GenerationRequest("a", "benign", 7, 32, prompt="Ultrasound image of benign breast")]))
    other = next(gen.generate([GenerationRequest("a", "malignant", 7, 32)]))
    np.testing.assert_array_equal(by_label, by_prompt)
    assert not np.array_equal(by_label, other)


def test_gray_conversion_is_luminance():
    rgb = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    rgb8 = np.round(rgb * 255)
    expected = rgb8 @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    assert np.abs(to_gray_uint8(rgb).astype(float) - expected).max() <= 1.0


def test_tiny_tokenizer_round_trips_the_paper_prompts():
    tok = tiny_tokenizer()
    for label in ("benign", "malignant", "normal"):
        text = f"Ultrasound image of {label} breast"
        ids = tok(text).input_ids
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text.lower()


def test_training_batches_split_across_processes_like_one_big_batch(work):
    data = TrainingData(ImageSet.read(work["data"]), 32, with_masks=True, seed=3)
    whole = data.batch(5, 4, rank=0, world=1)
    parts = data.batch(5, 2, rank=0, world=2) + data.batch(5, 2, rank=1, world=2)
    for a, b in zip(whole, parts):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.conditioning, b.conditioning)
    # Every image appears once per epoch.
    seen = [data.index_at(p) for p in range(len(data))]
    assert sorted(seen) == list(range(len(data)))


# ------------------------------------------------------------------------------------------------
# LoRA


def test_lora_adapter_saved_reloaded_and_base_untouched(work):
    base_digest = folder_digest(work["base"])
    out = work["root"] / "sd-lora"
    result = finetune_sd(recipe_config("sd-busi", data=str(work["data"]), base=str(work["base"]), out=str(out),
                                       lora=4, steps=6, lr=1e-2, batch_size=2, **FAST))
    assert len(result.losses) == 6
    assert (out / "pytorch_lora_weights.safetensors").is_file() and not (out / "unet").exists()
    assert folder_digest(work["base"]) == base_digest  # the base folder is never written
    saved = load_file(str(out / "pytorch_lora_weights.safetensors"))
    assert any(k.endswith("lora.up.weight") and v.abs().sum() > 0 for k, v in saved.items())  # B starts at 0: trained

    from peft.utils import get_peft_model_state_dict

    from usbench.generators.checkpoints import load_sd_pipeline

    pipe = load_sd_pipeline(out, fuse_lora=False)
    loaded = get_peft_model_state_dict(pipe.unet, adapter_name="usbench")
    mapped = {k.removeprefix("unet.").replace("lora.down", "lora_A").replace("lora.up", "lora_B"): v for k, v in saved.items()}
    assert_same_tensors(loaded, mapped)
    # Base weights inside the adapted UNet are the base file's.
    base_unet = unet_tensors(work["base"])
    params = dict(pipe.unet.named_parameters())
    for name in ("conv_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.base_layer.weight"):
        plain = name.replace(".base_layer", "")
        assert torch.equal(params[name].detach(), base_unet[plain])
    # Through the registry: the adapter changes the pixels, and reloads to the same ones.
    reqs = requests(1, size=32)
    lora_img = next(build_generator("sd-busi", {"model": str(out), "steps": 2}).generate(reqs))
    base_img = next(build_generator("sd-busi", {"model": str(work["base"]), "steps": 2}).generate(reqs))
    assert not np.array_equal(lora_img, base_img)
    np.testing.assert_array_equal(next(build_generator("sd-busi", {"model": str(out), "steps": 2}).generate(reqs)), lora_img)


# ------------------------------------------------------------------------------------------------
# ControlNet


@pytest.fixture(scope="module")
def controlnet(work):
    out = work["root"] / "cn"
    result = finetune_controlnet(recipe_config(
        "controlnet-busi", data=str(work["data"]), base=str(work["base"]), out=str(out), steps=14, lr=1e-2,
        batch_size=2, **FAST,
    ))
    return out, result


def test_controlnet_finetune_loss_falls_and_base_is_locked(work, controlnet):
    out, result = controlnet
    assert np.mean(result.losses[-4:]) < 0.8 * np.mean(result.losses[:4])
    assert_same_tensors(unet_tensors(out), unet_tensors(work["base"]))  # base locked
    trained = load_file(str(out / "checkpoints" / "step-000014" / "model.safetensors"))
    assert_same_tensors(unet_tensors(out, "controlnet"), trained)
    card = json.loads((out / CARD_FILE).read_text())
    assert card["kind"] == "controlnet-busi" and card["base"] == str(work["base"].resolve())


def test_controlnet_generator_follows_masks(work, controlnet):
    out, _ = controlnet
    gen = build_generator("controlnet-busi", {"model": str(out), "steps": 2})
    assert gen.config.scheduler == "ddim" and gen.config.guidance == 5.0  # the paper's ControlNet sampling
    data = ImageSet.read(work["data"])
    lesions = [r for r in data.records if r.label != "normal"][:3]
    reqs = [GenerationRequest(f"cn-{i}", r.label, i, 48, mask=data.load_mask(r, 48)) for i, r in enumerate(lesions)]
    assert all(r.mask is not None and r.mask.any() for r in reqs)
    images = list(gen.generate(reqs))
    assert all(im.shape == (48, 48) and im.dtype == np.uint8 for im in images)
    other_mask = GenerationRequest("x", reqs[0].label, reqs[0].seed, 48, mask=~reqs[0].mask)
    assert not np.array_equal(next(gen.generate([other_mask])), images[0])  # the mask conditions the image
    again = build_generator("controlnet-busi", {"model": str(out), "steps": 2, "batch_size": 1})
    for a, b in zip(images, again.generate(reqs)):
        assert_same_up_to_rounding(a, b)
    reloaded = build_generator("controlnet-busi", {"model": str(out), "steps": 2})
    np.testing.assert_array_equal(next(reloaded.generate(reqs)), images[0])  # same batch: bit-identical


# ------------------------------------------------------------------------------------------------
# Sharded generation under accelerate


def test_two_process_generation_equals_one_process(work, tmp_path):
    """`accelerate launch -m usbench generate` on 2 CPU processes writes the files of one process."""
    config = tmp_path / "gen.toml"
    config.write_text(f'[generator.sd-busi]\nmodel = "{work["sd"]}"\nsteps = 2\nbatch_size = 2\n')
    common = ["-m", "usbench", "generate", "-g", "sd-busi", "--config", str(config), "--labels-from", str(work["data"]),
              "--n", "7", "--image-size", "40", "--seed", "11", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu"]  # 2 processes; gloo on CPU
    two = subprocess.run(launch + common + ["--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stderr[-2000:]
    assert main(common[2:] + ["--out", str(tmp_path / "one")]) == 0
    one_files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    two_files = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert one_files == two_files and len(one_files) == 8  # 7 images + manifest, no shard folders left
    for rel in one_files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_two_process_finetuning_equals_one_process_with_the_global_batch(work, tmp_path):
    """accelerate launch, 2 CPU processes × batch 1 ≡ 1 process × batch 2: same samples, same noise,
    gradients averaged by DDP (equal up to float summation order)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["--data", str(work["data"]), "--base", str(work["base"]), "--steps", "3", "--lr", "1e-3",
              "--no-gradient-checkpointing", "--checkpoint-every", "100"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu"]  # 2 processes; gloo on CPU
    two = subprocess.run(launch + ["-m", "usbench", "finetune", "sd-busi", *common, "--batch-size", "1",
                                   "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert main(["finetune", "sd-busi", *common, "--batch-size", "2", "--out", str(tmp_path / "one")]) == 0
    a, b, base = unet_tensors(tmp_path / "two"), unet_tensors(tmp_path / "one"), unet_tensors(work["base"])
    assert a.keys() == b.keys()
    # The runs differ only by summation order (Adam can amplify it where a gradient is ~0): their
    # difference must be tiny next to what training changed. Each process training on its own
    # sample, or gradients not averaged, gives a difference as large as the update itself.
    between = sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5
    update = sum(float((b[k] - base[k]).pow(2).sum()) for k in b) ** 0.5
    assert update > 0 and between < 1e-3 * update, (between, update)
    card_two = json.loads((tmp_path / "two" / CARD_FILE).read_text())
    card_one = json.loads((tmp_path / "one" / CARD_FILE).read_text())
    assert card_two["num_processes"] == 2
    np.testing.assert_allclose(card_two["first_loss"], card_one["first_loss"], rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Crash and resume


def test_killed_finetuning_resumes_where_it_stopped(work, tmp_path):
    out = tmp_path / "crashy"
    args = ["finetune", "sd-busi", "--data", str(work["data"]), "--base", str(work["base"]), "--out", str(out),
            "--lr", "1e-3", "--batch-size", "2", "--checkpoint-every", "2", "--no-gradient-checkpointing"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "usbench", *args, "--steps", "500"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((out / "checkpoints").glob("step-*")):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sorted((out / "checkpoints").glob("step-*"))
    assert done, "no checkpoint was written before the deadline"
    k = int(done[-1].name.split("-")[1])
    assert k < 500 and not (out / CARD_FILE).exists()  # killed mid-run: no model published
    before = json.loads((done[-1] / "train_state.json").read_text())["losses"]

    assert main(args + ["--steps", str(k + 2)]) == 2  # checkpoints present: refuses to start over
    assert main(args + ["--steps", str(k + 2), "--resume"]) == 0
    state = json.loads(sorted((out / "checkpoints").glob("step-*"))[-1].joinpath("train_state.json").read_text())
    assert state["step"] == k + 2 and state["losses"][:k] == before
    card = json.loads((out / CARD_FILE).read_text())
    assert card["steps"] == k + 2

    # The resumed run trained exactly what an uninterrupted run trains.
    straight = tmp_path / "straight"
    assert main([a if a != str(out) else str(straight) for a in args] + ["--steps", str(k + 2)]) == 0
    assert_same_tensors(unet_tensors(out), unet_tensors(straight))


def test_ema_weights_are_the_ones_saved(work, tmp_path):
    out = tmp_path / "ema"
    finetune_sd(recipe_config("sd-busi", data=str(work["data"]), base=str(work["base"]), out=str(out), steps=3,
                              lr=1e-3, batch_size=2, ema=True, ema_decay=0.5, **FAST))
    raw = load_file(str(out / "checkpoints" / "step-000003" / "model.safetensors"))
    ema = torch.load(out / "checkpoints" / "step-000003" / "custom_checkpoint_0.pkl", weights_only=False)
    saved = unet_tensors(out)
    names = list(raw)  # EMAModel keeps shadow params in parameter order
    from diffusers import UNet2DConditionModel

    order = [n for n, _ in UNet2DConditionModel.from_pretrained(work["base"] / "unet").named_parameters()]
    shadow = dict(zip(order, ema["shadow_params"]))
    assert torch.equal(saved["conv_in.weight"], shadow["conv_in.weight"])
    assert not torch.equal(saved["conv_in.weight"], raw["conv_in.weight"])
    assert set(names) == set(saved)


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2


def _run_cli(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_finetune_bad_bases_through_cli(work, tmp_path, capsys, controlnet):
    data = str(work["data"])
    err = _run_cli(capsys, ["finetune", "sd-busi", "--data", data, "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "o1"), "--steps", "1"])
    assert "does not exist" in err
    err = _run_cli(capsys, ["finetune", "sd-busi", "--data", data, "--base", str(controlnet[0]), "--out", str(tmp_path / "o2"), "--steps", "1"])
    assert "ControlNet checkpoint" in err
    err = _run_cli(capsys, ["finetune", "controlnet-busi", "--data", data, "--base", str(controlnet[0]), "--out", str(tmp_path / "o3"), "--steps", "1"])
    assert "ControlNet checkpoint" in err
    broken = tmp_path / "broken"
    shutil.copytree(work["base"], broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    err = _run_cli(capsys, ["finetune", "sd-busi", "--data", data, "--base", str(broken), "--out", str(tmp_path / "o4"), "--steps", "1"])
    assert "incomplete checkpoint" in err and "unet" in err
    err = _run_cli(capsys, ["finetune", "sd-busi", "--data", data, "--base", str(work["base"]), "--out", str(work["sd"]), "--steps", "1"])
    assert "--resume" in err  # would overwrite a finished run
    err = _run_cli(capsys, ["finetune", "sd-busi", "--data", data, "--base", str(work["base"]), "--out", str(tmp_path / "o5"), "--mixed-precision", "fp8"])
    assert "mixed-precision" in err


def test_generator_checkpoint_errors(work, controlnet, tmp_path, capsys):
    with pytest.raises(WeightsError, match="usbench finetune sd-busi"):
        build_generator("sd-busi", {})  # nothing at the default location
    with pytest.raises(WeightsError, match="usbench finetune controlnet-busi"):
        build_generator("controlnet-busi", {})
    with pytest.raises(WeightsError, match="is a ControlNet checkpoint"):
        build_generator("sd-busi", {"model": str(controlnet[0])})
    with pytest.raises(WeightsError, match="without a ControlNet"):
        build_generator("controlnet-busi", {"model": str(work["sd"])})
    incomplete = tmp_path / "incomplete"
    shutil.copytree(work["base"], incomplete)
    shutil.rmtree(incomplete / "text_encoder")
    with pytest.raises(WeightsError, match="incomplete checkpoint.*text_encoder"):
        build_generator("sd-busi", {"model": str(incomplete)})
    with pytest.raises(WeightsError, match="not a diffusers checkpoint"):
        build_generator("sd-busi", {"model": str(work["data"])})
    # Through a command
    config = tmp_path / "wrong.toml"
    config.write_text(f'[generator.sd-busi]\nmodel = "{controlnet[0]}"\n')
    assert main(["generate", "-g", "sd-busi", "--config", str(config), "--labels-from", str(work["data"]), "--n", "2",
                 "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ControlNet checkpoint" in err and "\n" not in err


def test_default_location_is_where_finetune_writes(work, tmp_path, monkeypatch):
    from usbench.generators.checkpoints import default_checkpoint

    monkeypatch.setenv("USBENCH_CACHE", str(tmp_path / "cache"))
    shutil.copytree(work["sd"], default_checkpoint("sd-busi"))
    gen = build_generator("sd-busi", {"steps": 2})
    assert gen.folder == tmp_path / "cache" / "models" / "sd-busi"
    assert next(gen.generate(requests(1, 32))).shape == (32, 32)


def test_masks_of_wrong_size_or_not_binary(controlnet):
    gen = build_generator("controlnet-busi", {"model": str(controlnet[0]), "steps": 2})
    wrong_size = GenerationRequest("a", "benign", 0, 48, mask=np.zeros((40, 40), bool))
    with pytest.raises(InputError, match="mask is 40x40 but the image size is 48x48"):
        list(gen.generate([wrong_size]))
    gray = GenerationRequest("b", "benign", 0, 48, mask=np.arange(48 * 48).reshape(48, 48) % 7)
    with pytest.raises(InputError, match="not binary"):
        list(gen.generate([gray]))
    ok = GenerationRequest("c", "benign", 0, 48, mask=(np.arange(48 * 48).reshape(48, 48) % 2) * 255)
    assert next(gen.generate([ok])).shape == (48, 48)  # 0/255 masks are binary


def test_labels_the_model_was_not_trained_on(work, tmp_path):
    only_benign = tmp_path / "only-benign"
    shutil.copytree(work["sd"], only_benign, ignore=shutil.ignore_patterns("checkpoints"))
    card = json.loads((only_benign / CARD_FILE).read_text())
    card["labels"] = ["benign"]
    (only_benign / CARD_FILE).write_text(json.dumps(card))
    gen = build_generator("sd-busi", {"model": str(only_benign), "steps": 2})
    with pytest.raises(InputError, match="not trained on label.*malignant.*knows benign"):
        list(gen.generate(requests(2)))
    with pytest.raises(InputError, match="fibroadenoma"):
        list(build_generator("sd-busi", {"model": str(work["sd"])}).generate([GenerationRequest("x", "fibroadenoma", 0)]))


def test_out_of_memory_becomes_an_actionable_line():
    err = out_of_memory_error(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                              "fine-tuning sd-busi", batch_size=4)
    assert isinstance(err, OutOfMemory) and isinstance(err, UsbenchError) and err.exit_code == 2
    msg = str(err)
    assert "\n" not in msg and "out of GPU memory while fine-tuning sd-busi" in msg
    assert "batch size (now 4)" in msg and "fp16" in msg and "--lora" in msg


def test_hub_ids_come_from_the_hf_cache_when_offline(work, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsError, match="neither a folder nor in the Hugging Face cache"):
        build_generator("sd-busi", {"model": "someone/not-cached"})
    # The HF cache layout: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "hf" / "hub" / "models--usbench--tiny-sd"
    commit = "0" * 40
    shutil.copytree(work["sd"], repo / "snapshots" / commit, ignore=shutil.ignore_patterns("checkpoints"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    gen = build_generator("sd-busi", {"model": "usbench/tiny-sd", "steps": 2})
    assert gen.folder == repo / "snapshots" / commit
    local = build_generator("sd-busi", {"model": str(work["sd"]), "steps": 2})
    np.testing.assert_array_equal(next(gen.generate(requests(1, 32))), next(local.generate(requests(1, 32))))


def test_bad_generator_settings(work):
    from usbench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown scheduler 'plms2'"):
        build_generator("sd-busi", {"model": str(work["sd"]), "scheduler": "plms2"})
    with pytest.raises(ConfigError, match="unknown dtype"):
        build_generator("sd-busi", {"model": str(work["sd"]), "dtype": "fp8"})
    with pytest.raises(ConfigError, match="unknown key"):
        build_generator("sd-busi", {"model": str(work["sd"]), "stepz": 3})
