"""The KMS v2 wire types: the plugin API (`v2.KeyManagementService`: Status, Encrypt,
Decrypt) and the `EncryptedObject` envelope stored after the `k8s:enc:kms:v2:<name>:`
prefix, with upstream's field numbers.

The descriptors are built at import time in a private pool (no generated code, no
build step), and the gRPC methods are plain unary calls with these serialisers, so
the KMS client and the test plugin share one definition.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "v2.KeyManagementService"
METHODS = ("Status", "Decrypt", "Encrypt")
# EncryptedObject.encryptedDEKSourceType
AES_GCM_KEY = 0
HKDF_SHA256_XNONCE_AES_GCM_SEED = 1

_F = descriptor_pb2.FieldDescriptorProto
_pool = descriptor_pool.DescriptorPool()


def _field(name: str, number: int, ftype: int, *, label: int = _F.LABEL_OPTIONAL, type_name: str = "",
           json_name: str = "") -> Any:
    f = _F(name=name, number=number, type=ftype, label=label, json_name=json_name or name)
    if type_name:
        f.type_name = type_name
    return f


def _map_bytes(msg: Any, name: str, number: int, full: str) -> None:
    """A `map<string, bytes>` field: a repeated nested *Entry message marked map_entry."""
    entry = msg.nested_type.add(name=name[0].upper() + name[1:] + "Entry")
    entry.options.map_entry = True
    entry.field.extend([_field("key", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_BYTES)])
    msg.field.append(_field(name, number, _F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                            type_name=f".{full}.{entry.name}"))


def _build() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(name="kybernetes/kms/v2/api.proto", package="v2", syntax="proto3")
    fd.message_type.add(name="StatusRequest")
    m = fd.message_type.add(name="StatusResponse")
    m.field.extend([_field("version", 1, _F.TYPE_STRING), _field("healthz", 2, _F.TYPE_STRING),
                    _field("key_id", 3, _F.TYPE_STRING, json_name="keyId")])
    m = fd.message_type.add(name="DecryptRequest")
    m.field.extend([_field("ciphertext", 1, _F.TYPE_BYTES), _field("uid", 2, _F.TYPE_STRING),
                    _field("key_id", 3, _F.TYPE_STRING, json_name="keyId")])
    _map_bytes(m, "annotations", 4, "v2.DecryptRequest")
    m = fd.message_type.add(name="DecryptResponse")
    m.field.append(_field("plaintext", 1, _F.TYPE_BYTES))
    m = fd.message_type.add(name="EncryptRequest")
    m.field.extend([_field("plaintext", 1, _F.TYPE_BYTES), _field("uid", 2, _F.TYPE_STRING)])
    m = fd.message_type.add(name="EncryptResponse")
    m.field.extend([_field("ciphertext", 1, _F.TYPE_BYTES), _field("key_id", 2, _F.TYPE_STRING, json_name="keyId")])
    _map_bytes(m, "annotations", 3, "v2.EncryptResponse")
    e = fd.enum_type.add(name="EncryptedDEKSourceType")
    e.value.add(name="AES_GCM_KEY", number=AES_GCM_KEY)
    e.value.add(name="HKDF_SHA256_XNONCE_AES_GCM_SEED", number=HKDF_SHA256_XNONCE_AES_GCM_SEED)
    m = fd.message_type.add(name="EncryptedObject")
    m.field.extend([_field("encryptedData", 1, _F.TYPE_BYTES), _field("keyID", 2, _F.TYPE_STRING),
                    _field("encryptedDEKSource", 3, _F.TYPE_BYTES)])
    _map_bytes(m, "annotations", 4, "v2.EncryptedObject")
    m.field.append(_field("encryptedDEKSourceType", 5, _F.TYPE_ENUM, type_name=".v2.EncryptedDEKSourceType"))
    _pool.Add(fd)
    names = ("StatusRequest", "StatusResponse", "DecryptRequest", "DecryptResponse", "EncryptRequest",
             "EncryptResponse", "EncryptedObject")
    return {n: message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"v2.{n}")) for n in names}


_classes = _build()
StatusRequest = _classes["StatusRequest"]
StatusResponse = _classes["StatusResponse"]
DecryptRequest = _classes["DecryptRequest"]
DecryptResponse = _classes["DecryptResponse"]
EncryptRequest = _classes["EncryptRequest"]
EncryptResponse = _classes["EncryptResponse"]
EncryptedObject = _classes["EncryptedObject"]

REQUEST_RESPONSE = {"Status": (StatusRequest, StatusResponse), "Decrypt": (DecryptRequest, DecryptResponse),
                    "Encrypt": (EncryptRequest, EncryptResponse)}


def method_path(method: str) -> str:
    return f"/{SERVICE}/{method}"
