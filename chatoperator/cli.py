"""``chatoperator run``: the operator; ``chatoperator crd``: print the CRD it serves;
``chatoperator render``: print what it would create for a manifest."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf
import yaml

from chatoperator import handlers  # noqa: F401  (importing registers the handlers with kopf)
from chatoperator.crd import render_crd
from chatoperator.errors import InvalidSpec
from chatoperator.kube import Kube, connect
from chatoperator.render import DEFAULT_OPERATOR_NAMESPACE, RenderSettings, render, to_yaml
from chatoperator.runtime import Runtime
from chatoperator.settings import OperatorSettings, SettingsError

PEERING_NAME = "chatcluster-operator"


class _PlainDumper(yaml.SafeDumper):
    """Repeated sub-schemas written out in full: a CRD with YAML anchors is hard to read."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatoperator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator against the current cluster")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: do not coordinate with other instances (tests, development)",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL (default: %(default)s)",
    )
    run.add_argument("--verbose", action="store_true", help="log every pass and API call")
    commands.add_parser("crd", help="print the ChatCluster CustomResourceDefinition as YAML")
    render_command = commands.add_parser(
        "render",
        help="print every object the operator would create for a manifest (no cluster needed)",
    )
    render_command.add_argument(
        "-f", "--filename", required=True, help="a file with ChatCluster manifests; - for stdin"
    )
    render_command.add_argument(
        "--namespace", "-n", help="for objects that name none (default: default)"
    )
    render_command.add_argument(
        "--operator-namespace",
        default=DEFAULT_OPERATOR_NAMESPACE,
        help="where the operator's pods run (default: %(default)s); empty: outside the cluster",
    )
    return parser


def _run(args: argparse.Namespace, settings: OperatorSettings) -> None:
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # kopf logs every child event it hands over at INFO; the passes log what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kube = Kube(connect())
    kopf_settings = kopf.OperatorSettings()
    # The operator posts its own events; kopf adds only its own failures.
    kopf_settings.posting.level = logging.WARNING
    # Peering when deploy/ installed kopf's peering CRD; alone (with a warning) otherwise.
    # (kopf.run's peering_name= would make the CRD mandatory, even with --standalone.)
    kopf_settings.peering.name = PEERING_NAME
    # Told its namespaces, it serves those and the CRDs there at start: it must not need to list
    # every namespace (a namespaced install may not; kopf would retry for a minute first).
    kopf_settings.scanning.disabled = bool(args.namespace)
    kopf.run(
        settings=kopf_settings,
        standalone=args.standalone,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(runtime=Runtime(kube=kube, settings=settings)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "crd":
        yaml.dump(render_crd(), sys.stdout, Dumper=_PlainDumper, sort_keys=False, width=100)
        return 0
    try:
        settings = OperatorSettings.from_env()
    except SettingsError as exc:
        print(f"chatoperator {args.command}: {exc}", file=sys.stderr)
        return 2
    if args.command == "render":
        return _render(args, settings)
    _run(args, settings)
    return 0


def _render(args: argparse.Namespace, settings: OperatorSettings) -> int:
    try:
        if args.filename == "-":
            documents = list(yaml.safe_load_all(sys.stdin))
        else:
            with open(args.filename, encoding="utf-8") as manifest:
                documents = list(yaml.safe_load_all(manifest))
        objects = render(
            documents,
            RenderSettings(
                images=settings.images,
                namespace=args.namespace,
                operator_namespace=args.operator_namespace or None,
            ),
        )
    except (OSError, yaml.YAMLError, InvalidSpec) as exc:
        print(f"chatoperator render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(to_yaml(objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
