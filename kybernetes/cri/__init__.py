"""CRI v1 (runtime.v1): our own .proto for the subset kybernetes uses, its generated
stubs, and an asyncio client.

    from kybernetes.cri import CRIClient, pb

`pb` is the generated message module (pb.PodSandboxConfig, pb.ContainerConfig, ...),
`pb_grpc` the service stubs.  The stubs are generated from cri_v1.proto on first
import when missing or stale (kybernetes/cri/_build.py).
"""

from kybernetes.cri._build import ensure_generated as _ensure_generated

_ensure_generated()

from kybernetes.cri._gen import cri_v1_pb2 as pb  # noqa: E402
from kybernetes.cri._gen import cri_v1_pb2_grpc as pb_grpc  # noqa: E402
from kybernetes.cri.errors import (  # noqa: E402
    CRIAlreadyExists,
    CRIError,
    CRIInvalidArgument,
    CRINotFound,
    CRITimeout,
    CRIUnavailable,
    CRIUnimplemented,
)
from kybernetes.cri.client import CRIClient, auth_config, socket_path  # noqa: E402

__all__ = [
    "CRIClient", "pb", "pb_grpc", "auth_config", "socket_path",
    "CRIError", "CRINotFound", "CRIUnavailable", "CRIUnimplemented", "CRITimeout",
    "CRIAlreadyExists", "CRIInvalidArgument",
]
