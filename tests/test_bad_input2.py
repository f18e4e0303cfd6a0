"""Hostile use, round two: crafted files (duplicate YAML keys, damaged metrics, tampered
checkpoints, point files in other encodings), numbers that can never train, seeds out of
range, names that escape, and folders that are not ours. Every case runs the real CLI and
exits 2 with one line naming the culprit; the tests after the cases check what must be
recovered or kept (torn files, symlinked folders, a user's files beside a run).

`{ws}` in an argument is the workspace the fixture prepared.
"""

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch

from mixup_gan.cli import main

TOY = ["toy", "--no-progress", "--set", "output.dir={ws}/runs", "--set", "model.hidden=8",
       "--set", "model.depth=1", "--set", "train.steps=2", "--set", "train.batch_size=8",
       "--set", "train.n_dis=1", "--set", "eval.every=1", "--set", "eval.n_samples=20",
       "--set", "eval.snapshots=[2]", "--set", "train.device=cpu"]
IMAGE = ["image", "--no-progress", "--set", "output.dir={ws}/runs", "--set", "train.steps=1",
         "--set", "train.device=cpu", "--set", "output.name=bad-image"]
SMALL_IMAGE = ["--set", "model.g_width=8", "--set", "model.d_width=8", "--set",
               "model.latent_dim=8", "--set", "train.batch_size=4", "--set", "eval.every=1",
               "--set", "eval.n_samples=4"]
CLASSIFY = ["classify", "--no-progress", "--set", "output.dir={ws}/runs", "--set",
            "train.epochs=1", "--set", "train.device=cpu", "--set", "model.hidden=8"]
SAMPLE = ["sample", "--out", "{ws}/samples", "--n", "2", "--device", "cpu"]
FID = ["fid", "--no-progress", "--feature-extractor", "pixel-pool", "--device", "cpu",
       "--out", "{ws}/fid.json", "--cache-dir", "{ws}/cache", "-n", "4"]
BIG = str(2 ** 64)


def toy(*args):
    return [*TOY, *args]


def s(text):  # one --set
    return ["--set", text]


def points(name):
    return toy(*s("data.name=points"), *s(f"data.path={{ws}}/{name}"))


def resume(name, *args):  # the finished toy run copied to `name`, its checkpoint tampered
    return toy(*s(f"output.name={name}"), *args)


CASES = [
    # YAML: a key given twice is refused, naming the file and the key
    ("duplicate section", toy("--config", "{ws}/dup_section.yaml"),
     "dup_section.yaml: not valid YAML (line 3, column 1: duplicate key 'train'"),
    ("duplicate key", toy("--config", "{ws}/dup_key.yaml"), "duplicate key 'steps'"),
    ("duplicate key in a --set mapping", toy(*s("train={{steps: 2, steps: 3}}")),
     "duplicate key 'steps'"),
    ("duplicate grid key", ["sweep", "-c", "{ws}/sweep_dup.yaml"],
     "sweep_dup.yaml: not valid YAML (line 3, column 3: duplicate key 'loss.alpha'"),
    ("duplicate key in a classify file", [*CLASSIFY, "--config", "{ws}/dup_classify.yaml"],
     "duplicate key 'lr'"),
    # the file, not the --set, is at fault
    ("toy given a sweep file", toy("--config", "{ws}/sweep_seed.yaml"),
     "sweep_seed.yaml: unknown key 'grid'"),
    ("toy given a sweep file says so", toy("--config", "{ws}/sweep_seed.yaml"), "sweep -c"),
    ("nested unknown key of a file", toy("--config", "{ws}/nested.yaml"),
     "nested.yaml: unknown key 'train.stpes'"),
    # numbers that can never train
    ("lr inf", toy(*s("train.lr=.inf")), "train.lr: inf must be a finite number"),
    ("lr 1e308", toy(*s("train.lr=1e308")), "train.lr: 1e+308 must be <= 1000.0"),
    ("lr nan", toy(*s("train.lr=.nan")), "train.lr"),
    ("penalty inf", toy(*s("loss.gradient_penalty=.inf")), "loss.gradient_penalty"),
    ("penalty 1e300", toy(*s("loss.gradient_penalty=1e300")), "loss.gradient_penalty"),
    ("schedule final inf", toy(*s("train.lr_schedule={{kind: linear, final: .inf}}")),
     "train.lr_schedule.final"),
    ("alpha schedule final huge", toy(*s("loss.alpha_schedule.final=1e300")),
     "loss.alpha_schedule.final"),
    ("alpha 1e300", toy(*s("loss.alpha=1e300")), "loss.alpha"),
    ("erm weight inf", toy(*s("loss.erm_weight=.inf")), "loss.erm_weight"),
    ("mix_prob nan", toy(*s("loss.mix_prob=.nan")), "loss.mix_prob"),
    ("betas nan", toy(*s("train.betas=[.nan, 0.9]")), "train.betas"),
    ("ema nan", toy(*s("train.ema=.nan")), "train.ema"),
    # the late levers: EMA start, the penalty's schedule, D's lr ratio
    ("ema_start without an ema", toy(*s("train.ema_start=100")),
     "train.ema_start: 100 needs an EMA: set train.ema > 0 (its decay), or to turn the EMA "
     "off, also train.ema_start: 0"),
    ("ema turned off in a config that starts it late",  # the shipped recipes do
     ["toy", "--config", "configs/toy/grid_best.yaml", *TOY[1:], *s("train.ema=0")],
     "train.ema_start: 15000 needs an EMA: set train.ema > 0 (its decay), or to turn the EMA "
     "off, also train.ema_start: 0"),
    ("ema_start negative", toy(*s("train.ema=0.9"), *s("train.ema_start=-1")),
     "train.ema_start: -1 must be >= 0"),
    ("ema_start 2^64", toy(*s("train.ema=0.9"), *s(f"train.ema_start={BIG}")),
     "train.ema_start"),
    ("ema_start float", toy(*s("train.ema=0.9"), *s("train.ema_start=2.5")), "train.ema_start"),
    ("penalty schedule without a penalty",
     toy(*s("loss.gradient_penalty=0"),
         *s("loss.gradient_penalty_schedule={{kind: linear, final: 0}}")),
     "loss.gradient_penalty_schedule: schedules a penalty of weight 0: set "
     "loss.gradient_penalty > 0, or to turn the penalty off, also "
     "loss.gradient_penalty_schedule: {{kind: constant}}"),
    ("penalty turned off in a config that decays it",  # the shipped recipes decay theirs
     ["toy", "--config", "configs/toy/ring_best.yaml", *TOY[1:], *s("loss.gradient_penalty=0")],
     "loss.gradient_penalty_schedule: schedules a penalty of weight 0: set "
     "loss.gradient_penalty > 0, or to turn the penalty off, also "
     "loss.gradient_penalty_schedule: {{kind: constant}}"),
    ("image ema_start with ema off", [*IMAGE, *s("train.ema=0"), *s("train.ema_start=5")],
     "train.ema_start"),
    ("d_lr_ratio negative", toy(*s("train.d_lr_ratio=-1")), "train.d_lr_ratio: -1.0 must be > 0"),
    ("d_lr_ratio 0", toy(*s("train.d_lr_ratio=0")), "train.d_lr_ratio"),
    ("d_lr_ratio nan", toy(*s("train.d_lr_ratio=.nan")), "train.d_lr_ratio"),
    ("d_lr_ratio text", toy(*s("train.d_lr_ratio=fast")), "train.d_lr_ratio"),
    ("d_lr_ratio past the lr bound", toy(*s("train.lr=10"), *s("train.d_lr_ratio=500")),
     "train.d_lr_ratio: 500.0 makes D's lr 5000, past 1000"),
    ("penalty schedule final inf",
     toy(*s("loss.gradient_penalty_schedule={{kind: linear, final: .inf}}")),
     "loss.gradient_penalty_schedule.final"),
    ("penalty schedule kind", toy(*s("loss.gradient_penalty_schedule.kind=step")),
     "loss.gradient_penalty_schedule.kind"),
    ("penalty schedule end before start",
     toy(*s("loss.gradient_penalty_schedule={{kind: linear, start: 5, end: 3}}")),
     "loss.gradient_penalty_schedule.end"),
    ("penalty schedule unknown key", toy(*s("loss.gradient_penalty_schedule.stop=3")),
     "loss.gradient_penalty_schedule.stop"),
    ("sweep penalty schedule final negative",
     ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=late"),
      *s("grid={{loss.gradient_penalty_schedule.final: [0, -1]}}")],
     "loss.gradient_penalty_schedule.final"),
    ("sweep ema_start without an ema",
     ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=late"), *s("set.train.ema_start=5")],
     "train.ema_start"),
    ("hidden 1e9", toy(*s("model.hidden=1000000000")), "model.hidden"),
    ("depth 1e5", toy(*s("model.depth=100000")), "model.depth"),
    ("latent 1e8", toy(*s("model.latent_dim=100000000")), "model.latent_dim"),
    ("batch 1e12", toy(*s("train.batch_size=1000000000000")), "train.batch_size"),
    ("n_samples 1e11", toy(*s("eval.n_samples=100000000000")), "eval.n_samples"),
    ("n_dis 1e9", toy(*s("train.n_dis=1000000000")), "train.n_dis"),
    ("classify lr inf", [*CLASSIFY, *s("train.lr=.inf")], "train.lr"),
    ("classify hidden 1e9", [*CLASSIFY, *s("model.hidden=1000000000")], "model.hidden"),
    ("classify batch 1e12", [*CLASSIFY, *s("train.batch_size=1000000000000")],
     "train.batch_size"),
    ("classify alpha 1e300", [*CLASSIFY, *s("loss.alpha=1e300")], "loss.alpha"),
    ("classify momentum nan", [*CLASSIFY, *s("train.momentum=.nan")], "train.momentum"),
    ("classify weight decay inf", [*CLASSIFY, *s("train.weight_decay=.inf")],
     "train.weight_decay"),
    ("classify gamma inf", [*CLASSIFY, *s("train.gamma=.inf")], "train.gamma"),
    ("image width 1e9", [*IMAGE, *s("model.g_width=1000000000")], "model.g_width"),
    ("image size 1e5", [*IMAGE, *s("data.size=100000")], "data.size"),
    ("image grid 1e9", [*IMAGE, *s("eval.n_samples=1000000000")], "eval.n_samples"),
    ("image lr inf", [*IMAGE, *s("train.lr=.inf")], "train.lr"),
    # seeds: one type, 0 <= seed < 2^63, everywhere
    ("seed 2^64", toy(*s(f"train.seed={BIG}")), "train.seed"),
    ("seed 2^63", toy(*s(f"train.seed={2 ** 63}")), "train.seed"),
    ("seed negative", toy(*s("train.seed=-1")), "train.seed"),
    ("seed float", toy(*s("train.seed=1.5")), "train.seed"),
    ("classify corrupt_seed negative", [*CLASSIFY, *s("data.corrupt_seed=-5")],
     "data.corrupt_seed"),
    ("classify corrupt_seed 2^70", [*CLASSIFY, *s(f"data.corrupt_seed={2 ** 70}")],
     "data.corrupt_seed"),
    ("classify seed 2^64", [*CLASSIFY, *s(f"train.seed={BIG}")], "train.seed"),
    ("image seed negative", [*IMAGE, *s("train.seed=-3")], "train.seed"),
    ("sample seed 2^64", [*SAMPLE, "--checkpoint", "{ws}/image.pt", "--seed", BIG], "--seed"),
    ("sample seed negative", [*SAMPLE, "--checkpoint", "{ws}/image.pt", "--seed", "-1"],
     "--seed"),
    ("sweep seed negative", ["sweep", "-c", "{ws}/sweep_seed.yaml"], "train.seed"),
    ("sweep seed 2^64", ["sweep", "-c", "{ws}/sweep_seed.yaml", *s(f"seeds=[{BIG}]")],
     "train.seed"),
    # point files in other encodings or not CSV at all
    ("points latin-1", points("latin1.csv"), "latin1.csv: not UTF-8 text"),
    ("points utf-16", points("utf16.csv"), "utf16.csv: not UTF-8 text"),
    ("points giant field", points("giant.csv"), "giant.csv, line 2: not a CSV row"),
    ("points NUL byte", points("nul.csv"), "nul.csv, line 2"),
    ("points binary", points("binary.csv"), "binary.csv"),
    ("reference latin-1", toy(*s("data.reference={ws}/latin1.csv")), "latin1.csv"),
    ("points a folder", points("folder"), "folder: point file not found"),
    # names that escape or cannot be a folder
    ("name 250 characters", toy(*s("output.name=" + "n" * 250)),
     "output.name 'nnnnnnnnnnnnnnnnnnnn'...: a run name has at most 200 characters"),
    ("name blank", toy(*s("output.name='   '")), "output.name"),
    ("name a symlink to a file", toy(*s("output.name=tofile")), "output.name"),
    ("sweep name parent", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=..")], "name '..'"),
    ("sweep name absolute", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=/tmp/away")],
     "name '/tmp/away'"),
    ("sweep name nested", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=a b/c")],
     "name 'a b/c'"),
    ("sweep name slash", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=/")], "name '/'"),
    ("sweep name long", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=" + "s" * 240)],
     "at most 200 characters"),
    ("sweep file stem '.'", ["sweep", "-c", "{ws}/..yaml"], "the file name (set name)"),
    # folders that are not ours
    ("sweep into a user's folder", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=user")],
     "sweep_ok.yaml: name: {ws}/sweeps/user holds files but is not a mixup-gan sweep folder: "
     "refusing to write into it; choose another name"),
    ("sweep report of a user's folder", ["sweep", "-c", "{ws}/sweep_ok.yaml",
                                         *s("name=userpop"), "--report"],
     "is not a mixup-gan sweep folder"),
    ("overwrite a run holding a user's file", toy(*s("output.name=withnotes"), "--overwrite"),
     "holds precious.txt, which mixup-gan did not write: refusing to delete"),
    ("overwrite a user's lookalike", toy(*s("output.name=lookalike"), "--overwrite"),
     "is not a mixup-gan run folder: refusing to delete it"),
    ("write into a user's lookalike", toy(*s("output.name=lookalike")),
     "refusing to write into it"),
    ("overwrite through a symlink to a user's folder",
     toy(*s("output.name=touser"), "--overwrite"), "refusing to delete it"),
    ("overwrite a run holding a user's subfolder file",
     toy(*s("output.name=withsub"), "--overwrite"), "snapshots/mine.txt"),
    ("image folder resumed on another root",
     [*IMAGE, *SMALL_IMAGE, *s("output.name=folderrun"), *s("data.name=folder"),
      *s("data.root={ws}/imgs2")], "data.root: '{ws}/imgs' -> '{ws}/imgs2'"),
    # damaged metrics (a torn last line is recovered, see below; anything else is named)
    ("metrics line not an object", resume("midjunk", *s("train.steps=3")),
     "metrics.jsonl, line 2: not a JSON"),
    ("metrics line a list", resume("listline", *s("train.steps=3")),
     "metrics.jsonl, line 1: not a JSON object"),
    ("population metrics damaged", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=trained"),
                                    "--report"], "metrics.jsonl, line 1"),
    ("population row of no run", ["sweep", "-c", "{ws}/sweep_ok.yaml", *s("name=stranger"),
                                  "--report"], "a row of no run of this population"),
    # checkpoints that are valid torch files with the wrong content
    ("checkpoint wrong shape", resume("shape"),
     "nets.generator.layers.0.weight has shape (1, 3, 8), expected (1, 2, 8)"),
    ("checkpoint missing net", resume("nonet"), "nets lacks 'discriminator'"),
    ("checkpoint step text", resume("steptext"), "step is 'ten'"),
    ("checkpoint step float", resume("stepfloat"), "step is 2.5"),
    ("checkpoint step negative", resume("stepneg"), "step is -4"),
    ("checkpoint nets a list", resume("netslist"), "nets is a list"),
    ("checkpoint a list", resume("toplist"), "top level is not a dict"),
    ("checkpoint member count", resume("members"), "rng.seeds has 2 entries, expected 1"),
    ("checkpoint optimizer list", resume("optlist"),
     "optimizers.generator is a list, expected a mapping"),
    ("checkpoint weights text", resume("weightstext"), "expected a tensor"),
    ("checkpoint config a list", resume("configlist"), "its config is not a mapping"),
    ("classify checkpoint tampered", [*CLASSIFY, *s("output.name=cls")],
     "progress.best_test_error is 'low', expected a number"),
    ("sample wrong shape", [*SAMPLE, "--checkpoint", "{ws}/image_shape.pt"],
     "image_shape.pt: nets.ema.project.0.weight has shape (1, 1), expected (512, 8)"),
    ("sample nets a list", [*SAMPLE, "--checkpoint", "{ws}/image_list.pt"], "nets is a list"),
    ("sample NaN weights", [*SAMPLE, "--checkpoint", "{ws}/image_nan.pt"],
     "holds NaN or inf (the run diverged)"),
    ("sample live NaN weights", [*SAMPLE, "--checkpoint", "{ws}/image_nan.pt", "--no-ema"],
     "nets.generator."),
    ("fid of NaN weights", [*FID, "{ws}/image_nan.pt", "{ws}/imgs"], "image_nan.pt"),
]


def _tamper(root: Path, name: str, change) -> None:
    """The finished toy run `done` copied to `name`, its checkpoint rewritten by `change`."""
    shutil.copytree(root / "runs" / "done", root / "runs" / name)
    path = root / "runs" / name / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    torch.save(change(state), path)


def _set(state: dict, keys: str, value) -> dict:
    """`state` with the entry at `keys` ('/'-separated: net keys hold dots) set to `value`."""
    node = state
    *parents, last = keys.split("/")
    for key in parents:
        node = node[key]
    node[last] = value
    return state


def _checkpoints(root: Path) -> None:
    def nonet(st):
        del st["nets"]["discriminator"]
        return st

    tampered = {
        "shape": lambda st: _set(st, "nets/generator/layers.0.weight", torch.zeros(1, 3, 8)),
        "nonet": nonet,
        "steptext": lambda st: _set(st, "step", "ten"),
        "stepfloat": lambda st: _set(st, "step", 2.5),
        "stepneg": lambda st: _set(st, "step", -4),
        "netslist": lambda st: _set(st, "nets", list(st["nets"].values())),
        "toplist": lambda st: list(st.values()),
        "members": lambda st: _set(st, "rng/seeds", st["rng"]["seeds"] * 2),
        "optlist": lambda st: _set(st, "optimizers/generator", [1, 2]),
        "weightstext": lambda st: _set(st, "nets/discriminator/layers.0.bias", "w"),
        "configlist": lambda st: _set(st, "config", [1]),
    }
    for name, change in tampered.items():
        _tamper(root, name, change)
    for name, text in (("midjunk", '{"step": 1}\nnot json\n{"step": 2}\n'),
                       ("listline", '[1, 2]\n{"step": 2}\n')):
        _tamper(root, name, lambda st: st)
        (root / "runs" / name / "metrics.jsonl").write_text(text)


def _image_checkpoints(root: Path) -> None:
    state = torch.load(root / "image.pt", weights_only=True)
    ema = state["nets"]["ema"]
    key = next(k for k, v in ema.items() if v.dim() > 1)
    wrong = {**state, "nets": {**state["nets"], "ema": {**ema, key: torch.zeros(1, 1)}}}
    torch.save(wrong, root / "image_shape.pt")
    torch.save({**state, "nets": list(state["nets"].values())}, root / "image_list.pt")
    nan = {name: {k: v.clone() for k, v in net.items()} for name, net in state["nets"].items()}
    for net in nan.values():
        for v in net.values():
            if v.is_floating_point():
                v.fill_(float("nan"))
    torch.save({**state, "nets": nan}, root / "image_nan.pt")


def _files(root: Path) -> None:
    (root / "folder").mkdir()
    (root / "file").write_text("a file\n")
    texts = {
        "dup_section.yaml": "train:\n  steps: 2\ntrain:\n  lr: 0.1\n",
        "dup_key.yaml": "train:\n  steps: 2\n  steps: 3\n",
        "dup_classify.yaml": "train:\n  lr: 0.1\n  lr: 0.2\n",
        "nested.yaml": "train:\n  stpes: 3\n",
        "sweep_dup.yaml": "grid:\n  loss.alpha: [0.1]\n  loss.alpha: [0.2]\n",
        "sweep_seed.yaml": f"grid:\n  loss.alpha: [0.1]\nseeds: [-1]\noutput: {root}/sweeps\n",
        "..yaml": f"grid:\n  loss.alpha: [0.1]\noutput: {root}/sweeps\n",
        "sweep_ok.yaml": (f"set:\n  model.hidden: 8\n  model.depth: 1\n  train.batch_size: 8\n"
                          f"  train.n_dis: 1\n  train.steps: 2\n  eval.every: 1\n"
                          f"  eval.n_samples: 20\ngrid:\n  loss.alpha: [0, 0.2]\nseeds: [0]\n"
                          f"output: {root}/sweeps\n"),
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    (root / "latin1.csv").write_bytes("x,y\n0,0\n1,1 # caf\xe9\n".encode("latin-1"))
    (root / "utf16.csv").write_text("x,y\n0,0\n1,1\n", encoding="utf-16")
    (root / "giant.csv").write_text("x,y\n" + "1" * 200_000 + ",0\n0,0\n")
    (root / "nul.csv").write_bytes(b"x,y\n0\x00,0\n1,1\n")
    (root / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (root / "bom.csv").write_bytes(b"\xef\xbb\xbfx,y\n0,0\n1,1\n0.5,0.5\n")
    user = root / "sweeps" / "user"
    user.mkdir(parents=True)
    (user / "results.csv").write_text("my own results\n")
    (user / "summary.md").write_text("# my notes\n")
    (root / "sweeps" / "userpop" / "populations").mkdir(parents=True)
    (root / "sweeps" / "userpop" / "notes.txt").write_text("mine\n")


def _folders(root: Path) -> None:
    runs = root / "runs"
    shutil.copytree(runs / "done", runs / "withnotes")
    (runs / "withnotes" / "precious.txt").write_text("keep me\n")
    shutil.copytree(runs / "done", runs / "withsub")
    (runs / "withsub" / "snapshots" / "mine.txt").write_text("keep me too\n")
    look = runs / "lookalike"
    look.mkdir()
    (look / "config.yaml").write_text("train: {steps: 2}\n")
    torch.save({"my": torch.ones(2)}, look / "checkpoint.pt")
    (look / "precious.txt").write_text("keep me\n")
    (root / "userdata").mkdir()
    (root / "userdata" / "thesis.tex").write_text("chapter 1\n")
    (runs / "touser").symlink_to(root / "userdata")
    (runs / "tofile").symlink_to(root / "file")


def _sweeps(root: Path) -> None:
    for name in ("trained", "stranger"):
        assert main(["sweep", "--no-progress", "-c", str(root / "sweep_ok.yaml"), "--set",
                     f"name={name}"]) == 0
    pops = sorted((root / "sweeps" / "trained" / "populations").glob("pop-*/metrics.jsonl"))
    pops[0].write_text("7\n" + pops[0].read_text())
    pops = sorted((root / "sweeps" / "stranger" / "populations").glob("pop-*/metrics.jsonl"))
    pops[0].write_text('{"run": "someone else", "step": 1}\n' + pops[0].read_text())


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace every case points into."""
    pytest.importorskip("sklearn")
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("hostile2")
    _files(root)
    for folder in ("imgs", "imgs2"):
        (root / folder).mkdir()
        for i in range(4):
            pixels = np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}.png")
    assert main([a.format(ws=root) for a in toy(*s("output.name=done"))]) == 0
    _checkpoints(root)
    _folders(root)
    image_run = [*IMAGE, *SMALL_IMAGE, *s("data.name=digits"), *s("data.channels=1"),
                 *s("output.name=image")]
    assert main([a.format(ws=root) for a in image_run]) == 0
    (root / "image.pt").write_bytes((root / "runs" / "image" / "checkpoint.pt").read_bytes())
    _image_checkpoints(root)
    folder_run = [*IMAGE, *SMALL_IMAGE, *s("data.name=folder"), *s("data.root={ws}/imgs"),
                  *s("output.name=folderrun")]
    assert main([a.format(ws=root) for a in folder_run]) == 0
    assert main([a.format(ws=root) for a in [*CLASSIFY, *s("output.name=cls")]]) == 0
    path = root / "runs" / "cls" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["progress"]["best_test_error"] = "low"
    torch.save(state, path)
    _sweeps(root)
    return root


def _run(argv, ws, capsys):
    try:
        code = main([a.format(ws=ws) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    return code, capsys.readouterr()


@pytest.mark.parametrize(("argv", "culprit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_naming_the_culprit(ws, exits_2_naming, monkeypatch, argv, culprit):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    exits_2_naming(argv, ws, culprit)


def test_there_are_enough_new_cases():
    assert len(CASES) >= 80
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands == {"toy", "image", "classify", "sweep", "sample", "fid"}


def test_nothing_was_lost(ws):
    # every case above ran before this one (pytest keeps the file's order)
    assert (ws / "sweeps" / "user" / "results.csv").read_text() == "my own results\n"
    assert sorted(p.name for p in (ws / "sweeps" / "user").iterdir()) == [
        "results.csv", "summary.md"]
    assert (ws / "sweeps" / "userpop" / "notes.txt").read_text() == "mine\n"
    assert (ws / "runs" / "withnotes" / "precious.txt").read_text() == "keep me\n"
    assert (ws / "runs" / "withnotes" / "checkpoint.pt").is_file()
    assert (ws / "runs" / "withsub" / "snapshots" / "mine.txt").is_file()
    assert (ws / "runs" / "lookalike" / "precious.txt").read_text() == "keep me\n"
    assert (ws / "userdata" / "thesis.tex").read_text() == "chapter 1\n"
    assert (ws / "runs" / "touser").is_symlink()
    assert not (ws.parent / "sweeps").exists() and not Path("/tmp/away").exists()
    assert not list((ws / "runs").glob("n" * 250 + "*"))
    saved = (ws / "runs" / "folderrun" / "config.yaml").read_text()
    assert f"{ws}/imgs\n" in saved and "imgs2" not in saved  # the record is unchanged
    assert not list(ws.rglob("*.tmp"))


def test_a_symlinked_run_folder_is_the_same_folder(ws, capsys):
    """`runs/b -> runs/a`: one lock for both names (before: both trained at once)."""
    from mixup_gan.run_folder import FolderLock, folder_identity

    (ws / "runs" / "alias").symlink_to(ws / "runs" / "done")
    assert folder_identity(ws / "runs" / "alias") == folder_identity(ws / "runs" / "done")
    lock = FolderLock(ws / "runs" / "done")
    lock.acquire("done")
    try:
        code, out = _run(toy(*s("output.name=alias")), ws, capsys)
        assert code == 2 and "in use by another mixup-gan process" in out.err
    finally:
        lock.release()
    assert FolderLock(ws / "runs" / "alias").path == lock.path


def test_overwrite_through_a_symlink_keeps_the_link(ws, capsys):
    """Before: 'Cannot call rmtree on a symbolic link'. Now the run the link points at is
    trained again and the link stays."""
    shutil.copytree(ws / "runs" / "done", ws / "runs" / "target")
    (ws / "runs" / "link").symlink_to(ws / "runs" / "target")
    (ws / "runs" / "target" / "metrics.jsonl").write_text('{"step": 99}\n')
    code, out = _run(toy(*s("output.name=link"), "--overwrite"), ws, capsys)
    assert code == 0, out.err
    assert (ws / "runs" / "link").is_symlink()
    rows = [json.loads(r) for r in (ws / "runs" / "target" / "metrics.jsonl").read_text()
            .splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # trained again: the old row 99 is gone


def test_a_torn_last_metrics_line_is_recovered(ws, capsys):
    """A crash mid-append leaves a partial last line: the run resumes, every whole row kept."""
    shutil.copytree(ws / "runs" / "done", ws / "runs" / "torn")
    metrics = ws / "runs" / "torn" / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"step": 3, "d_lo')
    code, out = _run(toy(*s("output.name=torn"), *s("train.steps=3")), ws, capsys)
    assert code == 0, out.err
    rows = [json.loads(r) for r in metrics.read_text().splitlines()]
    assert rows[:2] == [json.loads(r) for r in whole.splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


def test_a_corrupt_summary_is_written_again(ws, capsys):
    shutil.copytree(ws / "runs" / "done", ws / "runs" / "badsummary")
    summary = ws / "runs" / "badsummary" / "summary.json"
    good = json.loads(summary.read_text())
    summary.write_text('{"steps": 2, "mod')
    code, out = _run(toy(*s("output.name=badsummary")), ws, capsys)
    assert code == 0, out.err
    again = json.loads(summary.read_text())
    assert again["steps"] == 2 and again["modes"] == good["modes"]


def test_read_jsonl_keeps_whole_rows_and_names_damage(tmp_path):
    from mixup_gan.config import ConfigError
    from mixup_gan.run_folder import read_jsonl

    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3')  # torn: no newline, not JSON... yet
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": 3}')  # a whole last row without its newline is kept
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')  # damage in the middle is no torn line
    with pytest.raises(ConfigError, match=r"m.jsonl, line 2: not a JSON object"):
        read_jsonl(path)
    path.write_text('"text"\n')
    with pytest.raises(ConfigError, match="line 1"):
        read_jsonl(path)


def test_a_folder_dataset_resumes_on_the_same_folder_named_otherwise(ws, capsys):
    argv = [*IMAGE, *SMALL_IMAGE, *s("data.name=folder"), *s("data.root={ws}/./imgs/"),
            *s("output.name=folderrun")]
    code, out = _run(argv, ws, capsys)
    assert code == 0, out.err


def test_a_bom_point_file_is_read(ws):
    from mixup_gan.toy.data import read_points

    assert read_points(ws / "bom.csv").tolist() == [[0, 0], [1, 1], [0.5, 0.5]]


def test_no_progress_hides_the_decoding_bar(ws, capsys):
    argv = [*IMAGE, *SMALL_IMAGE, *s("data.name=folder"), *s("data.root={ws}/imgs"),
            *s("output.name=quiet")]
    code, out = _run(argv, ws, capsys)
    assert code == 0, out.err
    assert "decoding" not in out.err + out.out


def test_a_full_disk_while_sampling_names_the_file_and_leaves_no_partial_png(
        ws, capsys, monkeypatch):
    from PIL import Image

    real_save = Image.Image.save
    written = []

    def save(self, fp, *args, **kwargs):
        if written:
            fp.write(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code, out = _run([*SAMPLE, "--checkpoint", "{ws}/image.pt", "--out", "{ws}/full"], ws,
                     capsys)
    assert code == 2
    assert f"{ws}/full/000001.png: cannot write it (No space left on device)" in out.err
    assert sorted(p.name for p in (ws / "full").iterdir()) == ["000000.png"]
    with Image.open(ws / "full" / "000000.png") as image:
        image.load()  # the one written is whole


def test_a_full_disk_in_toy_data_keeps_the_old_file(tmp_path, capsys, monkeypatch):
    import mixup_gan.checkpoint

    assert main(["toy-data", "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(fd):  # the data did not all reach the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mixup_gan.checkpoint.os, "fsync", full)
    code = main(["toy-data", "--out", str(tmp_path)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2
    assert (f"{tmp_path}/ring_paper.csv: cannot write it (No space left on device); the "
            "previous one is intact") in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no .tmp left


def test_sample_writes_the_same_images_atomically(ws, tmp_path):
    """The atomic PNG writer changes no pixel: the seeded images equal torchvision's own."""
    from PIL import Image
    from torchvision.utils import save_image

    from mixup_gan.image.generator import load_generator, sample_images

    out = sample_images(ws / "image.pt", 3, tmp_path / "s", seed=5, device="cpu")
    G, latent = load_generator(ws / "image.pt")
    z = torch.randn(3, latent, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images = G(z)
    for i in range(3):
        save_image(images[i], tmp_path / f"ref{i}.png", normalize=True, value_range=(-1, 1))
        with Image.open(out / f"{i:06d}.png") as a, Image.open(tmp_path / f"ref{i}.png") as b:
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", [0, 2 ** 60, 2 ** 63 - 1])
def test_every_seed_below_2_63_trains(seed, tiny_config):
    from mixup_gan.toy.runner import run_toy

    summary = run_toy(tiny_config("train.steps=2", f"train.seed={seed}"), f"seed{seed}")
    assert summary["steps"] == 2


def test_the_seed_rule_is_one_function():
    from mixup_gan.config import ConfigError, check_seed

    assert check_seed("12") == 12 and check_seed(2 ** 63 - 1) == 2 ** 63 - 1
    for bad in (-1, 2 ** 63, True, 1.0, "x", None):
        with pytest.raises(ConfigError, match="--seed"):
            check_seed(bad)
