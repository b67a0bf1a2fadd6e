"""The client every component uses to talk to the API server: REST + watch over a
pluggable transport, discovery, informers, work queues.

    async with Client.from_kubeconfig(path) as c:
        deployments = c.resource("apps", "v1", "deployments")
        d = await deployments.get("web", namespace="default")
"""

from kybernetes.client.discovery import APIResource, DiscoveryError
from kybernetes.client.errors import (
    AlreadyExists,
    APIStatusError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    Gone,
    GoneError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from kybernetes.client.informer import Informer, Store, object_key, split_key
from kybernetes.client.rest import Client, ResourceHandle, WatchStream
from kybernetes.client.transport import AiohttpTransport, HTTPRequest, HTTPResponse, Transport
from kybernetes.client.workqueue import ShutDown, WorkQueue

__all__ = [
    "Client", "ResourceHandle", "WatchStream",
    "Transport", "AiohttpTransport", "HTTPRequest", "HTTPResponse",
    "APIResource", "DiscoveryError",
    "ClientError", "TransportError", "APIStatusError", "BadRequest", "Unauthorized", "Forbidden",
    "NotFound", "MethodNotAllowed", "Conflict", "AlreadyExists", "Gone", "GoneError", "Invalid",
    "TooManyRequests", "ServerError", "ServiceUnavailable",
    "Informer", "Store", "object_key", "split_key",
    "WorkQueue", "ShutDown",
]
