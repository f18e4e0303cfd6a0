"""The command line under hostile use: every bad input exits 2 with one line that names the
culprit (file, key, flag or value) and no traceback, and nothing is lost.

Each case runs the real CLI in-process. `{ws}` in an argument is the workspace the fixture
prepared (bad files, a finished toy run, an image GAN checkpoint, a folder that is not a run).
"""

import errno
import json

import pytest
import torch

from mixup_gan.cli import main

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent  # sweep paths follow the file

TOY = ["toy", "--no-progress", "--set", "output.dir={ws}/runs", "--set", "model.hidden=8",
       "--set", "model.depth=1", "--set", "train.steps=2", "--set", "train.batch_size=8",
       "--set", "train.n_dis=1", "--set", "eval.every=1", "--set", "eval.n_samples=20",
       "--set", "eval.snapshots=[2]", "--set", "train.device=cpu"]
IMAGE = ["image", "--no-progress", "--set", "output.dir={ws}/runs", "--set", "train.steps=1",
         "--set", "train.device=cpu", "--set", "output.name=bad-image"]
CLASSIFY = ["classify", "--no-progress", "--set", "output.dir={ws}/runs", "--set",
            "train.epochs=1", "--set", "train.device=cpu"]
FID = ["fid", "--no-progress", "--feature-extractor", "pixel-pool", "--device", "cpu",
       "--out", "{ws}/fid.json", "--cache-dir", "{ws}/cache"]


def toy(*args):
    return [*TOY, *args]


def s(text):  # one --set
    return ["--set", text]


CASES = [
    # config files and --set
    ("config missing", toy("--config", "{ws}/missing.yaml"), "missing.yaml"),
    ("config is a folder", toy("--config", "{ws}/folder"), "is a folder"),
    ("config not YAML", toy("--config", "{ws}/bad.yaml"), "bad.yaml"),
    ("config is a list", toy("--config", "{ws}/list.yaml"), "top level"),
    ("config unknown section", toy("--config", "{ws}/unknown.yaml"), "'trian'"),
    ("--set path with a comment", toy(*s("output.dir={ws}/runs #2")), "output.dir"),
    ("--set value only a comment", toy(*s("output.name=#3")), "output.name"),
    ("--set list with a comment", toy(*s("train.betas=[0.5, 0.9] # beta1")), "train.betas"),
    ("image data root with a comment", [*IMAGE, *s("data.root={ws}/data #old")], "data.root"),
    ("steps zero", toy(*s("train.steps=0")), "train.steps"),
    ("steps text", toy(*s("train.steps=five")), "train.steps"),
    ("steps float", toy(*s("train.steps=2.5")), "train.steps"),
    ("lr negative", toy(*s("train.lr=-1")), "train.lr"),
    ("lr text", toy(*s("train.lr=fast")), "train.lr"),
    ("betas out of range", toy(*s("train.betas=[2,-1]")), "train.betas"),
    ("betas one value", toy(*s("train.betas=[0.9]")), "train.betas"),
    ("alpha negative", toy(*s("loss.alpha=-1")), "loss.alpha"),
    ("alpha nan", toy(*s("loss.alpha=.nan")), "loss.alpha"),
    ("alpha inf", toy(*s("loss.alpha=.inf")), "loss.alpha"),
    ("loss unknown", toy(*s("loss.name=wgan")), "loss.name"),
    ("uniform alpha > 1", toy(*s("loss.distribution=uniform"), *s("loss.alpha=2")),
     "loss.alpha"),
    ("pairing unknown", toy(*s("loss.pairing=x")), "loss.pairing"),
    ("mix_prob > 1", toy(*s("loss.mix_prob=2")), "loss.mix_prob"),
    ("erm_weight negative", toy(*s("loss.erm_weight=-1")), "loss.erm_weight"),
    ("generator loss unknown", toy(*s("loss.generator_loss=nope")), "loss.generator_loss"),
    ("unknown section", toy(*s("nope.key=1")), "nope"),
    ("unknown key", toy(*s("train.nope=1")), "train.nope"),
    ("set without value", toy(*s("train")), "train"),
    ("set of a section", toy(*s("train.steps.x=1")), "train.steps"),
    ("device banana", toy(*s("train.device=banana")), "train.device"),
    ("device gpu 7", toy(*s("train.device=cuda:7")), "train.device"),
    ("amp text", toy(*s("train.amp=maybe")), "train.amp"),
    ("capture text", toy(*s("train.capture=maybe")), "train.capture"),
    ("hidden zero", toy(*s("model.hidden=0")), "model.hidden"),
    ("n_samples one", toy(*s("eval.n_samples=1")), "eval.n_samples"),
    ("scale unknown", toy(*s("data.scale=huge")), "data.scale"),
    ("dataset unknown", toy(*s("data.name=moons")), "data.name"),
    # point files
    ("points without path", toy(*s("data.name=points"), *s("data.path=null")), "data.path"),
    ("points missing", toy(*s("data.name=points"), *s("data.path={ws}/none.csv")), "none.csv"),
    ("points nan", toy(*s("data.name=points"), *s("data.path={ws}/nan.csv")), "nan.csv, line 3"),
    ("points overflow float32", toy(*s("data.name=points"), *s("data.path={ws}/huge.csv")),
     "huge.csv, line 2"),
    ("points text", toy(*s("data.name=points"), *s("data.path={ws}/text.csv")),
     "text.csv, line 2"),
    ("points no y column", toy(*s("data.name=points"), *s("data.path={ws}/noy.csv")),
     "noy.csv, line 1"),
    ("points one row", toy(*s("data.name=points"), *s("data.path={ws}/one.csv")), "one.csv"),
    ("points empty", toy(*s("data.name=points"), *s("data.path={ws}/empty.csv")), "empty.csv"),
    ("reference of another dataset", toy(*s("data.reference=toy_data/grid_paper.csv")),
     "data.reference"),
    ("reference missing", toy(*s("data.reference={ws}/none.csv")), "none.csv"),
    # run folders and output paths
    ("name parent", toy(*s("output.name=..")), "output.name"),
    ("name dot", toy(*s("output.name=.")), "output.name"),
    ("name absolute", toy(*s("output.name=/tmp/elsewhere")), "output.name"),
    ("name with slash", toy(*s("output.name=a/b")), "output.name"),
    ("overwrite a folder that is no run", toy(*s("output.name=notarun"), "--overwrite"),
     "refusing to delete it"),
    ("run into a folder that is no run", toy(*s("output.name=notarun")),
     "refusing to write into it"),
    ("overwrite parent", toy(*s("output.name=.."), "--overwrite"), "output.name"),
    ("output dir under a file", toy(*s("output.dir={ws}/file/x")), "output.dir"),
    ("output dir in /proc", toy(*s("output.dir=/proc/mixup-gan-x")), "output.dir"),
    ("resume with another alpha", toy(*s("output.name=done"), *s("loss.alpha=0.5")),
     "loss.alpha"),
    ("corrupt checkpoint", toy(*s("output.name=corrupt")), "corrupt"),
    # image runs
    ("image arch", [*IMAGE, *s("model.arch=vgg")], "model.arch"),
    ("image size", [*IMAGE, *s("data.name=digits"), *s("data.size=48")], "data.size"),
    ("image empty folder", [*IMAGE, *s("data.name=folder"), *s("data.root={ws}/empty")],
     "data.root"),
    ("image broken file", [*IMAGE, *s("data.name=folder"), *s("data.root={ws}/broken")],
     "x.png"),
    ("image cifar offline", [*IMAGE, *s("data.root={ws}/empty"), *s("data.download=false")],
     "data.root"),
    ("image ema", [*IMAGE, *s("train.ema=2")], "train.ema"),
    ("image d_norm", [*IMAGE, *s("model.d_norm=layer")], "model.d_norm"),
    ("image channels", [*IMAGE, *s("data.channels=2")], "data.channels"),
    ("image device", [*IMAGE, *s("train.device=banana")], "train.device"),
    ("image output under a file", [*IMAGE, *s("data.name=digits"), *s("data.channels=1"),
                                   *s("output.dir={ws}/file/x")], "output.dir"),
    ("image fid extractor", [*IMAGE, *s("data.name=digits"), *s("data.channels=1"),
                             *s("eval.fid_every=1"), *s("eval.fid_extractor=nope")], "nope"),
    # classification runs
    ("classify cutmix per sample", [*CLASSIFY, *s("loss.mode=cutmix"),
                                    *s("loss.per_sample=true")], "loss.per_sample"),
    ("classify corrupt share", [*CLASSIFY, *s("data.corrupt=1.5")], "data.corrupt"),
    ("classify model", [*CLASSIFY, *s("model.name=vit")], "model.name"),
    ("classify milestones", [*CLASSIFY, *s("train.milestones=five")], "train.milestones"),
    ("classify cifar offline", [*CLASSIFY, *s("data.name=cifar10"), *s("data.root={ws}/empty"),
                                *s("data.download=false")], "data.root"),
    ("classify device", [*CLASSIFY, *s("train.device=tpu")], "train.device"),
    ("classify output", [*CLASSIFY, *s("output.dir={ws}/file/x")], "output.dir"),
    # sweeps
    ("sweep missing", ["sweep", "-c", "{ws}/none.yaml"], "none.yaml"),
    ("sweep --set with a comment", ["sweep", "-c", "{ws}/sweep_value.yaml", *s("name=first #1")],
     "name"),
    ("sweep empty grid", ["sweep", "-c", "{ws}/sweep_empty.yaml"], "grid is empty"),
    ("sweep unknown grid key", ["sweep", "-c", "{ws}/sweep_key.yaml"], "loss.alfa"),
    ("sweep bad value", ["sweep", "-c", "{ws}/sweep_value.yaml"], "loss.alpha=fast"),
    ("sweep no seeds", ["sweep", "-c", "{ws}/sweep_seeds.yaml"], "seeds"),
    ("sweep population", ["sweep", "-c", "{ws}/sweep_value.yaml", *s("population=0")],
     "population"),
    ("sweep reference checked first", ["sweep", "-c", "{ws}/sweep_reference.yaml",
                                       *s("population=1")], "data.name=grid"),
    ("sweep base missing", ["sweep", "-c", "{ws}/sweep_base.yaml"],
     "sweep_base.yaml: base: config file not found: {ws}/nowhere.yaml"),  # the file's folder
    ("sweep output under a file", ["sweep", "-c", "{ws}/sweep_output.yaml"], "output"),
    ("sweep report of nothing", ["sweep", "-c", "{ws}/sweep_untrained.yaml", "--report"],
     "--report: nothing was trained in {ws}/sweeps/sweep_untrained (check output and name)"),
    # sampling
    ("sample missing", ["sample", "--checkpoint", "{ws}/none.pt", "--out", "{ws}/s"], "none.pt"),
    ("sample junk", ["sample", "--checkpoint", "{ws}/junk.pt", "--out", "{ws}/s"], "junk.pt"),
    ("sample toy checkpoint", ["sample", "--checkpoint", "{ws}/runs/done/checkpoint.pt",
                               "--out", "{ws}/s"], "not an image GAN"),
    ("sample n zero", ["sample", "--checkpoint", "{ws}/image.pt", "--n", "0"], "--n"),
    ("sample n text", ["sample", "--checkpoint", "{ws}/image.pt", "--n", "many"], "--n"),
    ("sample out under a file", ["sample", "--checkpoint", "{ws}/image.pt", "--n", "1",
                                 "--out", "{ws}/file/x"], "--out"),
    ("sample device", ["sample", "--checkpoint", "{ws}/image.pt", "--device", "banana"],
     "--device"),
    # FID
    ("fid missing", [*FID, "{ws}/none", "{ws}/imgs"], "none"),
    ("fid empty folder", [*FID, "{ws}/empty", "{ws}/imgs"], "no images"),
    ("fid broken image", [*FID, "{ws}/broken", "{ws}/imgs"], "x.png"),
    ("fid metric", [*FID, "{ws}/imgs", "{ws}/imgs", "--metrics", "fid,nope"], "nope"),
    ("fid extractor", [*FID, "{ws}/imgs", "{ws}/imgs", "--feature-extractor", "nope"], "nope"),
    ("fid IS without logits", [*FID, "{ws}/imgs", "--metrics", "is"], "IS"),
    ("fid n one", [*FID, "{ws}/image.pt", "{ws}/imgs", "-n", "1"], "-n"),
    ("fid out under a file", [*FID, "{ws}/imgs", "{ws}/imgs", "--out", "{ws}/file/x.json"],
     "--out"),
    ("fid device", [*FID, "{ws}/imgs", "{ws}/imgs", "--device", "banana"], "--device"),
    ("fid junk checkpoint", [*FID, "{ws}/junk.pt", "{ws}/imgs"], "junk.pt"),
    ("fid toy checkpoint", [*FID, "{ws}/runs/done/checkpoint.pt", "{ws}/imgs"],
     "not an image GAN"),
    ("fid a run folder", [*FID, "{ws}/runs/done", "{ws}/imgs"], "checkpoint.pt"),
    ("fid no reference", [*FID, "{ws}/imgs"], "REFERENCE"),
    # reference points
    ("toy-data out under a file", ["toy-data", "--out", "{ws}/file/x"], "--out"),
]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace every case points into."""
    pytest.importorskip("sklearn")
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("hostile")
    (root / "folder").mkdir()
    (root / "empty").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "x.png").write_bytes(b"not a png")
    (root / "imgs").mkdir()
    for i in range(4):
        pixels = np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "imgs" / f"{i}.webp")  # any reader's suffix
    (root / "file").write_text("a file, not a folder\n")
    (root / "bad.yaml").write_text("train: [\n")
    (root / "list.yaml").write_text("- 1\n")
    (root / "unknown.yaml").write_text("trian:\n  steps: 3\n")
    files = {"nan.csv": "x,y\n0,0\nnan,1\n", "huge.csv": "x,y\n1e39,0\n0,0\n",
             "text.csv": "x,y\na,b\n", "noy.csv": "x,z\n1,2\n", "one.csv": "x,y\n1,2\n",
             "empty.csv": ""}
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "junk.pt").write_bytes(b"\x00junk" * 10)
    sweeps = {
        "sweep_empty.yaml": "grid: {}\n",
        "sweep_key.yaml": "grid:\n  loss.alfa: [0.1]\n",
        "sweep_value.yaml": "grid:\n  loss.alpha: [0.1, fast]\n",
        "sweep_seeds.yaml": "grid:\n  loss.alpha: [0.1]\nseeds: []\n",
        "sweep_reference.yaml": f"set:\n  data.reference: {REPO}/toy_data/ring_paper.csv\n"
                                "grid:\n  data.name: [ring, grid]\n",
        "sweep_base.yaml": "base: nowhere.yaml\ngrid:\n  loss.alpha: [0.1]\n",
        "sweep_untrained.yaml": "grid:\n  loss.alpha: [0.1]\n",
        "sweep_output.yaml": f"grid:\n  loss.alpha: [0.1]\noutput: {root}/file/x\n",
    }
    for name, text in sweeps.items():
        (root / name).write_text(text + f"output: {root}/sweeps\n" * ("output" not in text))
    assert main([a.format(ws=root) for a in toy(*s("output.name=done"))]) == 0
    assert main([a.format(ws=root) for a in toy(*s("output.name=corrupt"))]) == 0
    ckpt = root / "runs" / "corrupt" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    (root / "runs" / "notarun").mkdir()
    (root / "runs" / "notarun" / "precious.txt").write_text("keep me\n")
    image_run = [*IMAGE, *s("data.name=digits"), *s("data.channels=1"), *s("model.g_width=8"),
                 *s("model.d_width=8"), *s("model.latent_dim=8"), *s("train.batch_size=4"),
                 *s("eval.every=1"), *s("eval.n_samples=4"), *s("output.name=image")]
    assert main([a.format(ws=root) for a in image_run]) == 0
    (root / "image.pt").write_bytes((root / "runs" / "image" / "checkpoint.pt").read_bytes())
    return root


@pytest.mark.parametrize(("argv", "culprit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_naming_the_culprit(ws, exits_2_naming, monkeypatch, argv, culprit):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parent.parent)
    exits_2_naming(argv, ws, culprit)


def test_there_are_enough_cases():
    assert len(CASES) >= 60
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands == {"toy", "image", "classify", "sweep", "sample", "fid", "toy-data"}


def test_nothing_was_lost(ws):
    # every case above ran before this one (pytest keeps the file's order)
    assert (ws / "runs" / "notarun" / "precious.txt").read_text() == "keep me\n"
    assert (ws / "runs" / "done" / "checkpoint.pt").is_file()
    assert json.loads((ws / "runs" / "done" / "summary.json").read_text())["steps"] == 2
    assert (ws / "file").read_text() == "a file, not a folder\n"
    assert not (ws / "sweeps" / "sweep_untrained").exists()  # --report made no folder
    assert not list(ws.rglob("*.tmp"))


def test_a_folder_in_use_is_refused(ws, capsys):
    from mixup_gan.run_folder import FolderLock

    lock = FolderLock(ws / "runs" / "busy")
    lock.acquire("busy")
    try:
        assert main([a.format(ws=ws) for a in toy(*s("output.name=busy"))]) == 2
        assert "in use by another mixup-gan process" in capsys.readouterr().err
    finally:
        lock.release()
    assert main([a.format(ws=ws) for a in toy(*s("output.name=busy"))]) == 0


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(ws, capsys, monkeypatch):
    import mixup_gan.checkpoint

    argv = [a.format(ws=ws) for a in toy(*s("output.name=full"), *s("train.steps=4"),
                                         *s("output.checkpoint_every=2"))]
    real_save = torch.save
    calls = []

    def save_until_full(obj, handle, *args, **kwargs):
        calls.append(str(getattr(handle, "name", "")).endswith("checkpoint.pt.tmp"))
        if sum(calls) > 1 and calls[-1]:  # the second checkpoint: the disk is full
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(mixup_gan.checkpoint.torch, "save", save_until_full)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "previous one is intact" in err
    assert "Traceback" not in err
    folder = ws / "runs" / "full"
    assert not list(folder.glob("*.tmp"))
    monkeypatch.setattr(mixup_gan.checkpoint.torch, "save", real_save)
    from mixup_gan.checkpoint import load_checkpoint

    assert load_checkpoint(folder / "checkpoint.pt")["step"] == 2  # the last good one
    assert main(argv) == 0  # and the same command resumes from it
