"""Generate the CRI v1 Python stubs from cri_v1.proto with grpcio-tools.

The stubs live in kybernetes/cri/_gen/ (git-ignored).  They are (re)generated when
missing or when the .proto or the grpcio-tools version changed, so a fresh checkout
works without a separate build step; `make deps` runs this once up front
(`python -m kybernetes.cri._build`).  Generation is safe when several processes do it
at once: each writes into its own temporary directory and moves finished files into
place with os.replace, stamp last.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "cri_v1.proto"
GEN = HERE / "_gen"
STAMP = GEN / ".stamp"
MODULES = ("cri_v1_pb2.py", "cri_v1_pb2_grpc.py")


def _tools_version() -> str:
    try:
        from importlib.metadata import version

        return version("grpcio-tools")
    except Exception:  # pragma: no cover - tools missing is reported by generate()
        return "unknown"


def _wanted_stamp() -> str:
    digest = hashlib.sha256(PROTO.read_bytes()).hexdigest()
    return f"{digest} grpcio-tools={_tools_version()}\n"


def is_current() -> bool:
    try:
        stamp = STAMP.read_text()
    except OSError:
        return False
    if not all((GEN / m).exists() for m in MODULES):
        return False
    # The tools version is only looked up when the proto digest matches (cheap path first).
    digest = hashlib.sha256(PROTO.read_bytes()).hexdigest()
    return stamp.startswith(digest + " ") and stamp == _wanted_stamp()


def generate() -> None:
    """Run protoc (from grpcio-tools) and install the stubs into _gen/."""
    try:
        from grpc_tools import protoc
        import grpc_tools
    except ImportError as e:  # pragma: no cover
        raise RuntimeError(
            "kybernetes.cri: grpcio-tools is needed to generate the CRI stubs; run `make venv`"
        ) from e
    GEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gen-", dir=HERE) as tmp:
        src = Path(tmp, "src")
        out = Path(tmp, "out")
        # Lay the proto out under its Python package path, so that the generated
        # *_pb2_grpc.py imports `kybernetes.cri._gen.cri_v1_pb2`.
        pkg_dir = src / "kybernetes" / "cri" / "_gen"
        pkg_dir.mkdir(parents=True)
        out.mkdir()
        shutil.copyfile(PROTO, pkg_dir / PROTO.name)
        well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(pkg_dir / PROTO.name),
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"kybernetes.cri: protoc failed (exit {rc}) on {PROTO}")
        built = out / "kybernetes" / "cri" / "_gen"
        init = GEN / "__init__.py"
        if not init.exists():
            tmp_init = Path(tmp, "__init__.py")
            tmp_init.write_text('"""Generated CRI v1 stubs (see kybernetes/cri/_build.py); not committed."""\n')
            os.replace(tmp_init, init)
        for f in sorted(built.iterdir()):
            os.replace(f, GEN / f.name)
        stamp_tmp = Path(tmp, "stamp")
        stamp_tmp.write_text(_wanted_stamp())
        os.replace(stamp_tmp, STAMP)


def ensure_generated() -> None:
    if not is_current():
        generate()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--force" in argv or not is_current():
        generate()
        print(f"kybernetes.cri: generated stubs in {GEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
