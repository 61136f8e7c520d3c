"""The reference docs and JSON Schemas: generated from the models, complete, not stale."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from npusim.cli import main
from npusim.docs import render_all
from npusim.schema import KINDS, json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_reference_is_current() -> None:
    for name, text in render_all().items():
        path = ROOT / "docs" / "reference" / name
        assert path.exists(), f"docs/reference/{name} missing: run python -m npusim.docs"
        assert path.read_text("utf-8") == text, \
            f"docs/reference/{name} is stale: run python -m npusim.docs"


def _objects(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("top level", schema), *schema.get("$defs", {}).items()]


@pytest.mark.parametrize("kind", KINDS)
def test_every_key_has_a_description(kind: str) -> None:
    missing = [f"{where}.{key}" for where, obj in _objects(json_schema(kind))
               for key, s in obj.get("properties", {}).items()
               if not str(s.get("description", "")).strip()]
    assert missing == []


def test_quantities_name_their_unit_and_accept_strings() -> None:
    clock = json_schema("chip")["properties"]["clock"]
    assert clock["x-unit"] == "Hz"
    assert {"type": "string", "description": clock["anyOf"][1]["description"]} in clock["anyOf"]
    size = json_schema("chip")["$defs"]["Sram"]["properties"]["size"]
    assert size["x-unit"] == "bytes"


def test_presets_and_examples_satisfy_their_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    files = {"chip": sorted((ROOT / "arch").glob("*.yaml")),
             "system": sorted((ROOT / "arch" / "systems").glob("*.yaml")),
             "workload": sorted((ROOT / "workloads").glob("*.yaml")),
             "sweep": sorted((ROOT / "workloads" / "sweeps").glob("*.yaml"))}
    checked = 0
    for kind, paths in files.items():
        validator = jsonschema.Draft202012Validator(json_schema(kind))
        for path in paths:
            data = yaml.safe_load(path.read_text("utf-8"))
            errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in validator.iter_errors(data)]
            assert errors == [], f"{path.name}: {errors[:3]}"
            checked += 1
    assert checked >= 15


def test_schema_refuses_what_the_loader_refuses() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    chip = yaml.safe_load((ROOT / "arch" / "tpu_v1.yaml").read_text("utf-8"))
    chip["cores"]["core"]["systolic"]["colz"] = 8  # unknown key
    validator = jsonschema.Draft202012Validator(json_schema("chip"))
    assert any("colz" in e.message for e in validator.iter_errors(chip))
    layer = {"name": "w", "layers": [{"op": "matmul", "name": "fc", "m": 1, "n": 2}]}
    errors = list(jsonschema.Draft202012Validator(json_schema("workload")).iter_errors(layer))
    assert errors  # k is required


def test_workload_reference_lists_every_op_and_function() -> None:
    from npusim.workloads.ir import ELEMENTWISE_OPS, LAYER_TYPES

    text = render_all()["workload.md"]
    for kind in LAYER_TYPES:
        assert f"## {kind} layer" in text
    for name, (cls, per) in ELEMENTWISE_OPS.items():
        assert f"| `{name}` | {cls} | {per:g} |" in text


def test_schema_command_writes_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chip.schema.json"
    assert main(["schema", "chip", "-o", str(out)]) == 0
    assert json.loads(out.read_text("utf-8")) == json_schema("chip")
    capsys.readouterr()
    assert main(["schema", "system"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema("system")


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_resolve_inside_the_repository() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in _LINK.findall(page.read_text("utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() or ROOT not in path.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
