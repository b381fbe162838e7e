"""hack/scan.py's bookkeeping: which findings an exception covers, and the exceptions file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).parents[2]


def load_scan() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan", ROOT / "hack" / "scan.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scan"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


scan = load_scan()


def test_an_exception_covers_its_scanner_check_and_objects_only() -> None:
    exception = {"scanner": "kube-score", "check": "c", "objects": ["minimal:Deployment/*"]}
    assert scan._matches(exception, scan.Finding("kube-score", "c", "minimal:Deployment/x", ""))
    assert not scan._matches(exception, scan.Finding("checkov", "c", "minimal:Deployment/x", ""))
    assert not scan._matches(exception, scan.Finding("kube-score", "d", "minimal:Deployment/x", ""))
    assert not scan._matches(exception, scan.Finding("kube-score", "c", "prod:Deployment/x", ""))


def test_checkov_resources_become_source_kind_and_name() -> None:
    where = scan._checkov_where("/minimal.yaml", "Deployment.chat.demo-backend")
    assert where == "minimal:Deployment/demo-backend"
    crd = scan._checkov_where("/deploy.yaml", "CustomResourceDefinition.default.a.b.dev")
    assert crd == "deploy:CustomResourceDefinition/a.b.dev"


def test_every_exception_gives_its_reason_and_names_what_it_covers() -> None:
    exceptions = yaml.safe_load((ROOT / "hack" / "scanners-exceptions.yaml").read_text())
    for exception in exceptions:
        assert set(exception) == {"scanner", "check", "objects", "reason"}
        assert exception["scanner"] in {"checkov", "kube-score"}
        assert exception["objects"]
        assert len(exception["reason"]) > 40
