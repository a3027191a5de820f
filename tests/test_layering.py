"""The package's modules import only from lower layers (lazy imports inside functions included: transformers' remote
code follows every import), so there is no import cycle, and the model's code never reaches the tooling."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hf_vocos"

# Lowest first. A module may import modules of lower layers only; the modules of one subpackage (training) may
# also import each other, without cycles.
LAYERS = [
    {"_environment", "version", "capabilities", "configuration_vocos", "feature_extraction_vocos", "audio_io"},
    {"checkpoint_formats", "inference_vocos", "plotting", "file_streaming"},
    {"streaming_vocos"},
    {"modeling_vocos", "processing_vocos"},
    {"onnx_export", "conversion", "sharing", "vocoder"},
    {"cli_support"},
    {"dataset_vocos"},
    {"training"},
    {"cli"},
    {"__init__", "__main__"},
]
# What a checkpoint saved with its code carries (hf_vocos.with_remote_code): the model and its processor.
MODEL_CODE = {
    "configuration_vocos",
    "feature_extraction_vocos",
    "capabilities",
    "checkpoint_formats",
    "inference_vocos",
    "streaming_vocos",
    "modeling_vocos",
    "processing_vocos",
}


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `name` imports anywhere in its file (relative or absolute `hf_vocos` imports)."""
    parts = name.split(".")
    package = parts[:-1]  # the package a module (or a package's __init__) lives in
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == "hf_vocos":
                base = []
                node_module = node.module.split(".", 1)[1] if "." in node.module else None
                candidates = [".".join(filter(None, [node_module, alias.name])) for alias in node.names]
                found |= {c for c in candidates if c in modules} or ({node_module} if node_module else {"__init__"})
                continue
            else:
                continue
            stem = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                candidate = ".".join(stem + [alias.name])
                if candidate in modules or candidate + ".__init__" in modules:
                    found.add(candidate if candidate in modules else candidate + ".__init__")
                    continue
                target = ".".join(stem)
                found.add(target if target in modules else (target + ".__init__" if target else "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hf_vocos":
                    found.add(alias.name.split(".", 1)[1] if "." in alias.name else "__init__")
    found.discard(name)
    return found


def _layer(name: str) -> int:
    top = name.split(".")[0]
    for index, layer in enumerate(LAYERS):
        if top in layer or name in layer:
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_modules_import_only_from_lower_layers():
    wrong = []
    for name, imports in _graph().items():
        for target in imports:
            same_subpackage = "." in name and name.split(".")[0] == target.split(".")[0]
            if not same_subpackage and _layer(target) >= _layer(name):
                wrong.append(f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(name, trail):
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(target) :] + [target]))
            if target not in state:
                visit(target, trail + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_model_code_reaches_no_tooling():
    graph = _graph()
    reached, todo = set(), ["modeling_vocos", "processing_vocos"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert reached == MODEL_CODE


# Modules without behaviour of their own to test: the package's entry points and its version string.
WITHOUT_TEST_FILE = {"__init__", "__main__", "version", "training.__init__"}


def test_tests_mirror_the_package():
    """One test file per module: `x.py` is tested in tests/test_x.py, `training/x.py` in tests/test_training_x.py."""
    tests = Path(__file__).resolve().parent
    missing = [
        f"{name} -> tests/test_{name.replace('.', '_').lstrip('_')}.py"
        for name in _modules()
        if name not in WITHOUT_TEST_FILE and not (tests / f"test_{name.replace('.', '_').lstrip('_')}.py").is_file()
    ]
    assert not missing, "modules without a test file:\n" + "\n".join(missing)
