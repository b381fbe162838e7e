"""``chatoperator run``: the operator; ``chatoperator crd``: print the CRD it serves."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf
import yaml

from chatoperator import handlers  # noqa: F401  (importing registers the handlers with kopf)
from chatoperator.crd import render_crd
from chatoperator.kube import Kube, connect
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
        print(f"chatoperator run: {exc}", file=sys.stderr)
        return 2
    _run(args, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
