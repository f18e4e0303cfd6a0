"""The house rules of docs/architecture.md, checked on the source: modules import only from
their own layer or below, there is no import cycle, and no file or function grows past the
sizes a reader can hold in mind."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mixup_gan"

# Layers, bottom to top (docs/architecture.md). A module imports only from its layer or below.
LAYERS = [
    ["mixup", "arguments", "checkpoint", "rng", "yaml_loader", "config_paths", "fields"],
    ["config", "mixup_options", "losses", "gan_config", "member_losses", "runtime", "datasets",
     "data_fetch", "schedule", "hooks", "terms", "d_checks", "frechet", "stats", "loop"],
    ["train", "gan_step", "captured_step", "run_folder", "runs", "distributed", "ema",
     "shipped"],
    ["fid", "toy.plots", "toy.metrics", "toy.data", "toy.nets", "toy.reference", "image.nets",
     "image.data", "classify.data", "classify.nets",
     "toy.config", "image.config", "classify.config"],  # schemas: choices from the registries
    ["toy", "image", "classify"],
    ["cli", "cli_fid", "__init__", "__main__"],
]
MAX_FILE_LINES, MAX_FUNCTION_LINES = 350, 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer(module: str) -> int:
    """The layer of the longest matching prefix in LAYERS."""
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, rank = len(name), i
    assert rank is not None, f"{module} is in no layer of LAYERS"
    return rank


def imports(path: Path) -> set[str]:
    """Package modules `path` imports (relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("mixup_gan"):
                target = node.module.removeprefix("mixup_gan").lstrip(".")
            else:
                continue
            out.add(target)
            for alias in node.names:  # `from . import distributed` names a module
                candidate = f"{target}.{alias.name}".strip(".")
                if (PACKAGE / (candidate.replace(".", "/") + ".py")).exists():
                    out.add(candidate)
    return {m for m in out if m}


FILES = sorted(PACKAGE.rglob("*.py"))


def test_modules_import_only_from_their_layer_or_below():
    upward = []
    for path in FILES:
        me = module_name(path)
        for target in imports(path):
            if layer(target) > layer(me) and not me.startswith(target + "."):
                upward.append(f"{me} (layer {layer(me)}) imports {target} (layer {layer(target)})")
    assert upward == []


def test_there_is_no_import_cycle():
    graph = {module_name(p): {t for t in imports(p) if t != module_name(p)} for p in FILES}
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_files_and_functions_stay_small(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_FILE_LINES, f"{len(lines)} lines"
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
