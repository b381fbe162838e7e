"""Policy scanners over what an installation creates (issue 16), run by ``make lint``.

checkov and kube-score, both pinned (pyproject.toml; hack/scanners.sh), read the render of every
valid example (``chatoperator render``, with the images deploy/ configures the operator with)
and the deploy bundle (``kubectl kustomize deploy/``). Any finding not excepted in
hack/scanners-exceptions.yaml fails the run, and so does an exception that no longer matches a
finding: an exception outliving its reason would hide the next finding of that check.

Usage: python hack/scan.py --kube-score PATH --kubectl PATH
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chatoperator.render import RenderSettings, render, to_yaml
from chatoperator.settings import OperatorSettings
from chatoperator.spec import Images

ROOT = Path(__file__).parents[1]
EXCEPTIONS = ROOT / "hack" / "scanners-exceptions.yaml"
NAMESPACE = "chat"
"""Where the examples are rendered (the golden files' namespace: not ``default``, which
checkov rightly flags)."""
KUBE_SCORE_OK = 10
"""kube-score's grade of a passed check (1 critical, 5 warning)."""


@dataclass(frozen=True)
class Finding:
    scanner: str
    check: str
    where: str
    """``<source>:<Kind>/<name>``: the source is the example's file stem, or ``deploy``."""
    message: str

    def __str__(self) -> str:
        return f"{self.scanner} {self.check} {self.where}: {self.message}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-score", required=True, help="the kube-score binary")
    parser.add_argument("--kubectl", required=True, help="the kubectl binary (for kustomize)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatcluster-scan-") as tmp:
        directory = Path(tmp)
        _write_sources(directory, args.kubectl)
        checkov, checkov_summary = _checkov(directory)
        kube_score, kube_score_summary = _kube_score(directory, args.kube_score)
    findings = checkov + kube_score
    exceptions = yaml.safe_load(EXCEPTIONS.read_text())
    unexcepted = [f for f in findings if not any(_matches(e, f) for e in exceptions)]
    unused = [e for e in exceptions if not any(_matches(e, f) for f in findings)]
    print(f"checkov: {checkov_summary}")
    print(f"kube-score: {kube_score_summary}")
    print(f"{len(findings) - len(unexcepted)} findings excepted by {EXCEPTIONS.relative_to(ROOT)}")
    for finding in unexcepted:
        print(f"FINDING {finding}")
    for exception in unused:
        print(f"UNUSED EXCEPTION {exception['scanner']} {exception['check']}: no finding left")
    return 1 if unexcepted or unused else 0


def _write_sources(directory: Path, kubectl: str) -> None:
    bundle = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy")], check=True, capture_output=True, text=True
    ).stdout
    (directory / "deploy.yaml").write_text(bundle)
    settings = RenderSettings(images=_deployed_images(bundle), namespace=NAMESPACE)
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        objects = render(yaml.safe_load_all(example.read_text()), settings)
        (directory / example.name).write_text(to_yaml(objects))


def _deployed_images(bundle: str) -> Images:
    """The images the bundle's operator is configured with, read from its Deployment."""
    [deployment] = [
        doc for doc in yaml.safe_load_all(bundle) if doc and doc["kind"] == "Deployment"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return OperatorSettings.from_env(env).images


def _checkov(directory: Path) -> tuple[list[Finding], str]:
    command = [str(Path(sys.executable).with_name("checkov")), "-d", str(directory)]
    command += ["--framework", "kubernetes", "--output", "json", "--quiet", "--compact"]
    command += ["--skip-download"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):  # 1: some check failed
        raise SystemExit(f"checkov failed:\n{result.stderr}")
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    if isinstance(report, list):
        [report] = report
    failed = report.get("results", {}).get("failed_checks", []) if report else []
    findings = [
        Finding(
            "checkov",
            check["check_id"],
            _checkov_where(check["file_path"], check["resource"]),
            check["check_name"],
        )
        for check in failed
    ]
    summary = report.get("summary", {}) if report else {}
    return findings, f"{summary.get('passed', 0)} checks passed, {summary.get('failed', 0)} failed"


def _checkov_where(file_path: str, resource: str) -> str:
    kind, _namespace, name = resource.split(".", 2)
    return f"{Path(file_path).stem}:{kind}/{name}"


def _kube_score(directory: Path, kube_score: str) -> tuple[list[Finding], str]:
    files = [str(path) for path in sorted(directory.glob("*.yaml"))]
    result = subprocess.run(
        [kube_score, "score", "--output-format", "json", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):  # 1: some check is not OK
        raise SystemExit(f"kube-score failed:\n{result.stderr}")
    findings, passed = [], 0
    for scored in json.loads(result.stdout):
        kind = scored["type_meta"]["kind"]
        where = f"{Path(scored['file_name']).stem}:{kind}/{scored['object_meta']['name']}"
        for check in scored["checks"]:
            if check["skipped"]:
                continue
            if check["grade"] >= KUBE_SCORE_OK:
                passed += 1
                continue
            comments = "; ".join(sorted({c["summary"] for c in check["comments"] or []}))
            findings.append(Finding("kube-score", check["check"]["id"], where, comments))
    return findings, f"{passed} checks passed, {len(findings)} failed"


def _matches(exception: dict[str, Any], finding: Finding) -> bool:
    return (
        exception["scanner"] == finding.scanner
        and exception["check"] == finding.check
        and _any_glob(exception["objects"], finding.where)
    )


def _any_glob(patterns: Iterable[str], where: str) -> bool:
    return any(fnmatch.fnmatchcase(where, pattern) for pattern in patterns)


if __name__ == "__main__":
    sys.exit(main())
