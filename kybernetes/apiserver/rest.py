"""REST handlers for resources: create, get, list, watch, update, patch, delete,
deletecollection, and the status / scale / binding subresources.

The rules of each resource come from its registry strategy; this module holds only
the verb mechanics shared by all of them (as upstream's generic registry store does).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from aiohttp import web

from kybernetes.api.goformat import go_quote
from kybernetes.api import meta as apimeta
from kybernetes.api import managedfields as mf
from kybernetes.api.uids import new_uuid
from kybernetes.apiserver import errors, fieldmanager, negotiation, tables
from kybernetes.apiserver.negotiation import Output
from kybernetes.apiserver.objects import ObjectStore, object_key
from kybernetes.apiserver.requestinfo import RequestInfo
from kybernetes.apiserver import listing
from kybernetes.registry.base import Cause, Strategy

if TYPE_CHECKING:
    from kybernetes.apiserver.reviews import Reviews
from kybernetes.storage.interface import ConflictError, KeyExistsError, KeyNotFoundError

Obj = dict[str, Any]

_IMMORTAL_NAMESPACES = {"default", "kube-system", "kube-public"}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
# Writes that name no resourceVersion retry storage conflicts as upstream's GuaranteedUpdate
# does (until they succeed); the bound only stops a pathological livelock.
_MAX_PATCH_RETRIES = 1000


@dataclass
class Request:
    """What a handler needs to know about one API request."""

    http: web.Request
    info: RequestInfo
    strategy: Strategy
    query: dict[str, str]
    output: Output
    warnings: list[str] = field(default_factory=list)
    options_dry_run: bool = False  # dryRun given in a DeleteOptions body rather than the query

    @property
    def dry_run(self) -> bool:
        return self.options_dry_run or "All" in self.http.query.getall("dryRun", [])


# An admission plugin: (operation, request, new object, old object) -> None; may mutate
# `new` (mutating phase) or raise APIError (either phase).
AdmissionFn = Callable[[str, Request, Optional[Obj], Optional[Obj]], Awaitable[None]]


class ResourceHandlers:
    """Verb implementations over the object store."""

    def __init__(self, objects: ObjectStore, validator: "Validator") -> None:
        self.objects = objects
        self.validator = validator
        self.mutating: list[AdmissionFn] = []
        self.validating: list[AdmissionFn] = []
        from kybernetes.apiserver.service_alloc import ServiceAllocator

        self.services = ServiceAllocator(objects)
        self.reviews: Optional["Reviews"] = None

    @staticmethod
    def _is_service(s: Strategy) -> bool:
        return s.resource == "services" and not s.group

    # ------------------------------------------------------------------ helpers
    def _key(self, r: Request, name: Optional[str] = None) -> str:
        return object_key(r.strategy, r.info.namespace, name if name is not None else r.info.name)

    async def _get_current(self, r: Request, name: Optional[str] = None):
        kv = await self.objects.read(r.strategy, self._key(r, name))
        if kv is None:
            raise errors.not_found(r.strategy.resource, r.strategy.group, name or r.info.name)
        return kv

    def respond(self, r: Request, obj: Any, status: int = 200) -> web.Response:
        body, ctype = negotiation.encode(obj, r.output)
        resp = web.Response(body=body, status=status, content_type=ctype)
        for w in r.warnings:
            resp.headers.add("Warning", warning_header(w))
        return resp

    def _present(self, r: Request, obj: Obj) -> Any:
        """Shape one object for the response (Table / PartialObjectMetadata / as is)."""
        if r.output.as_kind == "Table":
            return tables.table(r.strategy, [obj], r.query.get("includeObject", "Metadata"))
        if r.output.as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return tables.partial(obj, r.output.as_version)
        return obj

    async def _admit(self, phase: list[AdmissionFn], op: str, r: Request, new: Optional[Obj], old: Optional[Obj]) -> None:
        for fn in phase:
            await fn(op, r, new, old)

    def _check_type(self, r: Request, obj: Any) -> Obj:
        s = r.strategy
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != s.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({s.kind})")
        if api_version and api_version != s.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({s.api_version})")
        obj["apiVersion"], obj["kind"] = s.api_version, s.kind
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        return obj

    def _check_namespace(self, r: Request, obj: Obj) -> None:
        meta = obj["metadata"]
        if r.strategy.namespaced:
            ns = meta.get("namespace") or ""
            if not ns:
                meta["namespace"] = r.info.namespace
            elif r.info.namespace and ns != r.info.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
        else:
            meta.pop("namespace", None)

    def _decode_check(self, r: Request, obj: Obj) -> None:
        """What upstream finds while decoding the body: wrong JSON types (400) and unknown
        fields (400 under fieldValidation=Strict, a warning under Warn, dropped either way)."""
        from kybernetes.api import validation

        s = r.strategy
        mode = r.query.get("fieldValidation", "Warn")
        if mode not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", got "{mode}"')
        decode, unknown = self.validator.decode_check(s, obj)
        if decode:
            raise errors.bad_request(validation.cannot_handle_message(s.kind, s.version, decode[0].message))
        # explicit nulls mean "unset" to Go's decoder; defaulting and validation expect that
        validation.drop_nulls_for(obj, s.group, s.version, s.kind)
        if unknown:
            if mode == "Strict":
                raise errors.bad_request(validation.cannot_handle_message(
                    s.kind, s.version, validation.strict_decoding_message(unknown)))
            if mode == "Warn":
                r.warnings.extend(unknown)
            self.validator.prune(s, obj)

    async def _validate(self, r: Request, obj: Obj, old: Optional[Obj]) -> None:
        """Field rules after defaulting and admission (422 Invalid with causes)."""
        causes = self.validator.validate(r.strategy, obj, old, r.info.subresource)
        if causes:
            raise errors.invalid(r.strategy.kind, r.strategy.group, obj["metadata"].get("name", ""), causes)

    async def _namespace_lifecycle(self, r: Request, op: str, name: str = "") -> None:
        """NamespaceLifecycle: namespaced objects need a live namespace to be created in."""
        if not r.strategy.namespaced or op != "CREATE":
            return
        ns = r.info.namespace
        kv = await self.objects.namespace(ns)
        if kv is None:
            raise errors.not_found("namespaces", "", ns)
        nsobj = self.objects.decode(kv)
        if nsobj.get("metadata", {}).get("deletionTimestamp") or nsobj.get("status", {}).get("phase") == "Terminating":
            err = errors.forbidden(r.strategy.resource, r.strategy.group, name,
                                   f"unable to create new content in namespace {ns} because it is being terminated")
            err.details.setdefault("causes", []).append({
                "reason": "NamespaceTerminating", "field": "metadata.namespace",
                "message": f"namespace {ns} is being terminated"})
            raise err

    # ------------------------------------------------------------------ create
    async def create(self, r: Request, body: Any) -> web.Response:
        s = r.strategy
        obj = self._check_type(r, body)
        self._check_namespace(r, obj)
        if not s.persisted:
            return await self._create_unstored(r, obj)
        fieldmanager.check_options(r, apply=False, patch=False, options_kind="CreateOptions")
        return await self._create(r, obj, tracked=False)

    async def _create(self, r: Request, obj: Obj, *, tracked: bool) -> web.Response:
        """The create pipeline; `tracked` when managedFields are already computed (apply)."""
        s = r.strategy
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.internal("resourceVersion should not be set on objects to be created")
        if not meta.get("name"):
            gen = meta.get("generateName")
            if gen:
                meta["name"] = gen + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        self._decode_check(r, obj)
        apimeta.drop_empty_meta(obj)
        await self._namespace_lifecycle(r, "CREATE", meta.get("name", ""))
        prepare_new_meta(obj, s)
        if s.resource == "certificatesigningrequests" and s.group == "certificates.k8s.io":
            set_requester(obj, r.http["user"])
        s.default(obj)
        if not tracked:
            fieldmanager.track(r, None, obj)
        s.prepare_for_create(obj)
        await self._admit(self.mutating, "CREATE", r, obj, None)
        await self._validate(r, obj, None)
        r.warnings.extend(s.warnings_on_create(obj))
        await self._admit(self.validating, "CREATE", r, obj, None)
        if r.dry_run:
            return self.respond(r, self._present(r, obj), 201)
        key = object_key(s, meta.get("namespace", ""), meta["name"])
        claimed = await self.services.allocate(obj) if self._is_service(s) else []
        try:
            kv = await self.objects.store.create(key, self.objects.encode(key, obj, s))
        except KeyExistsError:
            await self.services.rollback(claimed)
            raise errors.already_exists(s.resource, s.group, meta["name"]) from None
        except BaseException:
            await self.services.rollback(claimed)
            raise
        meta["resourceVersion"] = str(kv.mod_revision)
        return self.respond(r, self._present(r, obj), 201)

    async def _create_unstored(self, r: Request, obj: Obj) -> web.Response:
        """Create-only kinds that are answered, not stored: Binding and the reviews."""
        s = r.strategy
        self._decode_check(r, obj)
        causes = s.validate(obj)
        if causes:
            raise errors.invalid(s.kind, s.group, obj["metadata"].get("name", ""), causes)
        if s.resource == "bindings" and not s.group:
            return await self.bind(r, obj, pod=obj["metadata"].get("name", ""))
        if self.reviews is None:
            raise errors.method_not_allowed()
        answered = await self.reviews.answer(s.resource, r.http["user"], obj)
        return self.respond(r, answered, 201)

    # ------------------------------------------------------------------ get
    async def get(self, r: Request) -> web.Response:
        kv = await self._get_current(r)
        obj = self.objects.decode(kv, r.strategy)
        if r.info.subresource == "scale":
            return self.respond(r, to_scale(r.strategy, obj))
        return self.respond(r, self._present(r, obj))

    # ------------------------------------------------------------------ list / watch
    async def list(self, r: Request) -> web.Response:
        result = await listing.list_objects(self.objects, r)
        return self.respond(r, result)

    async def watch(self, r: Request) -> web.StreamResponse:
        from kybernetes.apiserver.watch import serve_watch

        return await serve_watch(self.objects, r)

    # ------------------------------------------------------------------ update / patch
    async def update(self, r: Request, body: Any) -> web.Response:
        if r.info.subresource == "scale":
            if not isinstance(body, dict):
                raise errors.bad_request("the body of the request was not a JSON object")
            return await self._update_scale(r, body)
        fieldmanager.check_options(r, apply=False, patch=False, options_kind="UpdateOptions")
        obj = self._check_type(r, body)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != r.info.name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({r.info.name})")
        meta["name"] = r.info.name
        self._check_namespace(r, obj)
        kv = await self._get_current(r)
        rv = meta.get("resourceVersion")
        if rv and rv != str(kv.mod_revision):
            raise errors.conflict(r.strategy.resource, r.strategy.group, r.info.name, errors.OBJECT_MODIFIED)
        result = await self._write_update(r, obj, kv)
        return self.respond(r, self._present(r, result))

    async def _write_update(self, r: Request, new: Obj, kv, *, tracked: bool = False) -> Obj:
        """Run the update pipeline for `new` against the stored `kv`; CAS write.
        `tracked` when managedFields are already computed (apply)."""
        s = r.strategy
        old = self.objects.decode(kv, s)
        self._decode_check(r, new)
        apimeta.drop_empty_meta(new)
        check_update_preconditions(s, new, old, r.info.subresource)
        status_only = r.info.subresource == "status"
        ephemeral = r.info.subresource == "ephemeralcontainers"
        carry_meta(new, old, reset=s.status_reset_meta if status_only or ephemeral or r.info.subresource == "approval" else
                   ("labels", "annotations", "finalizers", "ownerReferences") if r.info.subresource == "finalize" else ())
        if status_only:
            s.prepare_for_status_update(new, old)
        elif r.info.subresource == "approval":
            s.prepare_for_approval_update(new, old)
        elif ephemeral:
            # pods/ephemeralcontainers: only spec.ephemeralContainers changes (and generation with it)
            s.prepare_for_ephemeral_update(new, old)
            if "generation" in old["metadata"] and s.generation_changes(new, old):
                new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        elif r.info.subresource == "finalize":
            # finalize changes only spec.finalizers (namespaces)
            finalizers = (new.get("spec") or {}).get("finalizers")
            for k in list(new):
                if k not in ("apiVersion", "kind", "metadata"):
                    del new[k]
            new.update({k: copy.deepcopy(v) for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")})
            new.setdefault("spec", {})["finalizers"] = list(finalizers or [])
        else:
            s.prepare_for_update(new, old)
            s.default(new)
            if "generation" in old["metadata"] and s.generation_changes(new, old):
                new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if not tracked:
            fieldmanager.track(r, old, new)
        await self._admit(self.mutating, "UPDATE", r, new, old)
        await self._validate(r, new, old)
        if status_only:
            causes = s.validate_status_update(new, old)
            if causes:
                raise errors.invalid(s.kind, s.group, r.info.name, causes)
        r.warnings.extend(s.warnings_on_update(new, old))
        await self._admit(self.validating, "UPDATE", r, new, old)
        new["metadata"]["resourceVersion"] = str(kv.mod_revision)
        mf.revert_timestamp_only_changes(new, old)
        if new == old and not self.objects.is_stale(kv):
            return old  # no-op: upstream skips the write and keeps the resourceVersion
        if r.dry_run:
            return new
        key = self._key(r)
        service = self._is_service(s) and not r.info.subresource
        claimed = await self.services.allocate(new, old) if service else []
        try:
            nkv = await self.objects.store.update(key, self.objects.encode(key, new, s), kv.mod_revision)
        except ConflictError:
            await self.services.rollback(claimed)
            raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED) from None
        except KeyNotFoundError:
            await self.services.rollback(claimed)
            raise errors.not_found(s.resource, s.group, r.info.name) from None
        except BaseException:
            await self.services.rollback(claimed)
            raise
        if service:
            await self.services.release(old, keep=new)
        new["metadata"]["resourceVersion"] = str(nkv.mod_revision)
        if finalized(new):
            await self._finish_delete(r, new, nkv.mod_revision)
        return new

    async def patch(self, r: Request, body: bytes, content_type: str) -> web.Response:
        from kybernetes.api import patch as patchlib

        ct = negotiation.content_type_of(content_type)
        if ct not in (negotiation.JSON_PATCH, negotiation.MERGE_PATCH, negotiation.STRATEGIC_PATCH,
                      negotiation.APPLY_PATCH):
            raise errors.unsupported_media_type(ct)
        fieldmanager.check_options(r, apply=ct == negotiation.APPLY_PATCH, patch=True, options_kind="PatchOptions")
        patch_doc = negotiation.decode_body(body, ct)
        if ct == negotiation.APPLY_PATCH:
            return await self._apply(r, patch_doc)
        if ct == negotiation.MERGE_PATCH and not isinstance(patch_doc, dict):
            raise errors.bad_request("Invalid JSON Patch")
        s = r.strategy
        for attempt in range(_MAX_PATCH_RETRIES):
            kv = await self._get_current(r)
            current = self.objects.decode(kv, s)
            if r.info.subresource == "scale":
                current = to_scale(s, current)
            try:
                if ct == negotiation.JSON_PATCH:
                    if not isinstance(patch_doc, list):
                        raise errors.bad_request("json patch must be a list of operations")
                    patched = patchlib.apply_json_patch(current, patch_doc)
                elif ct == negotiation.MERGE_PATCH:
                    patched = patchlib.apply_merge_patch(current, patch_doc)
                else:
                    if r.info.subresource == "scale":
                        schema = patchlib.patch_schema_for("autoscaling", "v1", "Scale")
                    else:
                        schema = patchlib.patch_schema_for(s.group, s.version, s.kind)
                    patched = patchlib.apply_strategic_merge_patch(current, patch_doc, schema)
            except patchlib.PatchError as e:
                raise errors.APIError(e.code, e.reason or "", e.status_message or e.message) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            if r.info.subresource == "scale":
                try:
                    return await self._update_scale(r, patched)
                except errors.APIError as e:
                    # the patch named no resourceVersion of its own: a race is retried
                    if e.code == 409 and e.reason == "Conflict" and attempt + 1 < _MAX_PATCH_RETRIES \
                            and not patch_doc_rv(patch_doc):
                        continue
                    raise
            _check_metadata_shape(patched, "patch")
            patched = self._check_type(r, patched)
            # a patch may not rename the object (upstream checkName)
            if patched["metadata"].get("name", "") != r.info.name:
                raise errors.bad_request(f"the name of the object ({patched['metadata'].get('name', '')}) does not "
                                         f"match the name on the URL ({r.info.name})")
            self._check_namespace(r, patched)
            # a patch that names a resourceVersion is a precondition; otherwise retry on races
            rv_pinned = patched["metadata"].get("resourceVersion") not in (None, str(kv.mod_revision))
            if rv_pinned:
                raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED)
            try:
                result = await self._write_update(r, patched, kv)
            except errors.APIError as e:
                if e.code == 409 and e.reason == "Conflict" and attempt + 1 < _MAX_PATCH_RETRIES:
                    continue
                raise
            return self.respond(r, self._present(r, result))
        raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED)

    async def _apply(self, r: Request, config: Any) -> web.Response:
        """Server-side apply (application/apply-patch+yaml): create or merge by field ownership."""
        s = r.strategy
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        _check_metadata_shape(config, "apply")
        cname = (config.get("metadata") or {}).get("name")
        if cname and cname != r.info.name:
            raise errors.bad_request(
                f"the name of the object ({cname}) does not match the name on the URL ({r.info.name})")
        for attempt in range(_MAX_PATCH_RETRIES):
            if r.info.subresource == "scale":
                try:
                    return await self._update_scale(r, None, apply_config=config)
                except errors.APIError as e:
                    if e.code == 409 and e.reason == "Conflict" and "modified" in e.message \
                            and attempt + 1 < _MAX_PATCH_RETRIES:
                        continue
                    raise
            try:
                kv = await self._get_current(r)
            except errors.APIError as e:
                if e.code != 404 or r.info.subresource:
                    raise
                kv = None
            if kv is None:
                obj = fieldmanager.apply(r, None, config)
                obj = self._check_type(r, obj)
                obj["metadata"]["name"] = r.info.name
                self._check_namespace(r, obj)
                try:
                    return await self._create(r, obj, tracked=True)
                except errors.APIError as e:
                    if e.reason == "AlreadyExists" and attempt + 1 < _MAX_PATCH_RETRIES:
                        continue  # created meanwhile: apply onto it instead
                    raise
            live = self.objects.decode(kv, s)
            obj = self._check_type(r, fieldmanager.apply(r, live, config))
            obj["metadata"]["name"] = r.info.name
            self._check_namespace(r, obj)
            try:
                result = await self._write_update(r, obj, kv, tracked=True)
            except errors.APIError as e:
                if e.code == 409 and e.reason == "Conflict" and "modified" in e.message \
                        and attempt + 1 < _MAX_PATCH_RETRIES:
                    continue
                raise
            return self.respond(r, self._present(r, result))
        raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED)

    async def _update_scale(self, r: Request, scale: Optional[Obj], *, apply_config: Optional[Obj] = None) -> web.Response:
        """A write through /scale: `scale` is the new Scale (update, patch), or `apply_config` a
        server-side apply of one. Field ownership is worked out on the Scale (the parent's owners
        of spec.replicas shown as owners of the Scale's spec.replicas) and mapped back onto the
        parent, as upstream's ScaleHandler does, so `kubectl scale` owns the parent's replicas."""
        s = r.strategy
        body = scale if scale is not None else apply_config
        _check_metadata_shape(body, "apply" if apply_config is not None else "patch")
        name = (body.get("metadata") or {}).get("name")
        if name and name != r.info.name:  # upstream checkName
            raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL ({r.info.name})")
        kv = await self._get_current(r)
        obj = self.objects.decode(kv, s)
        parent_entries = obj["metadata"].get("managedFields")
        old_scale = to_scale(s, obj)
        if parent_entries:
            old_scale["metadata"]["managedFields"] = mf.scale_entries_to_subresource(parent_entries)
        if apply_config is not None:
            scale = fieldmanager.apply_scale(r, old_scale, apply_config)
        else:
            assert scale is not None
            scale = copy.deepcopy(scale)
            scale.setdefault("metadata", {}).pop("managedFields", None)
            if parent_entries:
                scale["metadata"]["managedFields"] = copy.deepcopy(old_scale["metadata"]["managedFields"])
            fieldmanager.track_scale(r, old_scale, scale)
        spec = scale.get("spec")
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", r.info.name, [
                Cause("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")])
        rv = (scale.get("metadata") or {}).get("resourceVersion") if apply_config is None else None
        if rv and rv != str(kv.mod_revision):
            raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED)
        obj.setdefault("spec", {})["replicas"] = replicas
        scale_entries = (scale.get("metadata") or {}).get("managedFields")
        if parent_entries or scale_entries:
            mf.set_managed_fields(obj, mf.scale_entries_to_parent(parent_entries or [], scale_entries or [],
                                                                  s.api_version))
        sub = RequestInfo(**{**r.info.__dict__, "subresource": ""})
        inner = Request(r.http, sub, s, r.query, r.output, r.warnings)
        result = await self._write_update(inner, obj, kv, tracked=True)
        return self.respond(r, to_scale(s, result))

    # ------------------------------------------------------------------ binding
    async def bind(self, r: Request, body: Any, pod: Optional[str] = None) -> web.Response:
        """POST pods/<name>/binding (or bindings with the pod's name): set spec.nodeName once."""
        if not isinstance(body, dict) or not (body.get("target") or {}).get("name"):
            raise errors.invalid("Binding", "", r.info.name, [Cause("FieldValueRequired", "target.name", "Required value")])
        node = body["target"]["name"]
        if pod is not None:
            pods = _PODS_STRATEGY()
            info = RequestInfo(**{**r.info.__dict__, "resource": "pods", "name": pod, "subresource": "binding"})
            r = Request(r.http, info, pods, r.query, r.output, r.warnings)
        for _ in range(_MAX_PATCH_RETRIES):
            kv = await self._get_current(r)
            pod = self.objects.decode(kv)
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods/binding", "", r.info.name, "pod is being deleted, cannot be assigned to a host")
            if (pod.get("spec") or {}).get("nodeName"):
                raise errors.conflict("pods/binding", "", r.info.name,
                                      f"pod {r.info.name} is already assigned to node \"{pod['spec']['nodeName']}\"")
            pod["spec"]["nodeName"] = node
            conds = pod.setdefault("status", {}).setdefault("conditions", [])
            conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": apimeta.now_rfc3339()})
            if r.dry_run:
                break
            key = self._key(r)
            try:
                await self.objects.store.update(key, self.objects.encode(key, pod), kv.mod_revision)
                break
            except ConflictError:
                continue
        return self.respond(r, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    # ------------------------------------------------------------------ delete
    async def delete(self, r: Request, options: Optional[Obj]) -> web.Response:
        s = r.strategy
        options = delete_options(r, options)
        if s.resource == "namespaces" and not s.group and r.info.name in _IMMORTAL_NAMESPACES:
            raise errors.forbidden("namespaces", "", r.info.name, "this namespace may not be deleted")
        kv = await self._get_current(r)
        obj = self.objects.decode(kv, s)
        obj, result = await self._delete_current(r, obj, kv.mod_revision, options)
        if result is None:
            return self.respond(r, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                     "details": status_details(s, obj)})
        # upstream answers 202 only for a pending delete that asked orphanDependents=false
        no_orphans = options.get("orphanDependents") is False \
            or r.http.query.get("orphanDependents", "").lower() == "false"
        code = 202 if result["metadata"].get("deletionTimestamp") and not r.dry_run and no_orphans else 200
        return self.respond(r, self._present(r, result), code)

    async def _delete_object(self, r: Request, obj: Obj, mod_rev: int, options: Obj) -> Optional[Obj]:
        """Delete or start graceful deletion; returns the object to answer with, or None for a Status."""
        s = r.strategy
        meta = obj["metadata"]
        key = object_key(s, meta.get("namespace", ""), meta["name"])
        graceful = self._grace_period(s, obj, options)
        old_finalizers = list(meta.get("finalizers") or [])
        finalizers = old_finalizers
        # Garbage collection (upstream deletionFinalizersForGarbageCollection): the
        # deletion options, else the finalizers already present, decide whether the
        # garbage collector orphans the dependents first (`orphan`) or deletes them
        # before the object (`foregroundDeletion`); Background adds neither.  Events
        # do not take part (their default policy is Unsupported upstream).
        if not (s.resource == "events" and s.group in ("", "events.k8s.io")):
            orphan_gc, foreground_gc = "orphan", "foregroundDeletion"
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is not None:
                orphan, foreground = bool(options["orphanDependents"]), False
            elif policy in ("Orphan", "Foreground", "Background"):
                orphan, foreground = policy == "Orphan", policy == "Foreground"
            else:
                first = next((f for f in old_finalizers if f in (orphan_gc, foreground_gc)), None)
                orphan, foreground = first == orphan_gc, first == foreground_gc
            wanted = [f for f in old_finalizers if f not in (orphan_gc, foreground_gc)]
            wanted += [orphan_gc] if orphan else []
            wanted += [foreground_gc] if foreground else []
            if set(wanted) != set(old_finalizers):
                finalizers = wanted
        ns_pending = s.resource == "namespaces" and not s.group and bool((obj.get("spec") or {}).get("finalizers"))

        async def write_terminating() -> Obj:
            if r.dry_run:
                return obj
            try:
                nkv = await self.objects.store.update(key, self.objects.encode(key, obj, s), mod_rev)
            except ConflictError:
                raise errors.conflict(s.resource, s.group, meta["name"], errors.OBJECT_MODIFIED) from None
            meta["resourceVersion"] = str(nkv.mod_revision)
            return obj

        if meta.get("deletionTimestamp") and finalizers is not old_finalizers \
                and not meta.get("deletionGracePeriodSeconds"):
            # already terminating: the deletion options may still switch the garbage
            # collector's finalizers (not while a graceful deletion is pending, as upstream)
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            if not finalized(obj):
                return await write_terminating()
            # no finalizer left (e.g. Background after Foreground): it goes now
        elif finalizers or graceful is not None or ns_pending:
            if meta.get("deletionTimestamp"):
                return obj  # already terminating: the finalizers / kubelet finish it
            if finalizers is not old_finalizers:
                meta["finalizers"] = finalizers
            meta["deletionTimestamp"] = apimeta.now_rfc3339()
            if meta.get("generation"):
                meta["generation"] += 1  # upstream: setting deletionTimestamp moves generation
            meta["deletionGracePeriodSeconds"] = graceful or 0
            if ns_pending:
                obj.setdefault("status", {})["phase"] = "Terminating"
            return await write_terminating()
        if r.dry_run:
            return obj if s.return_deleted_object else None
        try:
            dkv = await self.objects.store.delete(key, mod_rev)
        except KeyNotFoundError:
            raise errors.not_found(s.resource, s.group, meta["name"]) from None
        except ConflictError:
            raise errors.conflict(s.resource, s.group, meta["name"], errors.OBJECT_MODIFIED) from None
        meta["resourceVersion"] = str(dkv.mod_revision)
        if self._is_service(s):
            await self.services.release(obj)
        return obj if s.return_deleted_object else None

    def _grace_period(self, s: Strategy, obj: Obj, options: Obj) -> Optional[int]:
        """Pods on a node terminate gracefully (the kubelet finishes them); others go at once."""
        if s.group or s.resource != "pods":
            return None
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return None
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return None
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return None if grace == 0 else int(grace)

    async def _finish_delete(self, r: Request, obj: Obj, mod_rev: int) -> None:
        """Remove an object whose deletion is pending and whose finalizers are all gone."""
        key = object_key(r.strategy, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        try:
            await self.objects.store.delete(key, mod_rev)
        except (KeyNotFoundError, ConflictError):
            return
        if self._is_service(r.strategy):
            await self.services.release(obj)

    async def delete_collection(self, r: Request, options: Optional[Obj]) -> web.Response:
        s = r.strategy
        options = delete_options(r, options)
        deleted = []
        objs = await listing.select_all(self.objects, r)
        for obj in objs:
            meta = obj["metadata"]
            sub = RequestInfo(**{**r.info.__dict__, "name": meta["name"], "namespace": meta.get("namespace", "")})
            inner = Request(r.http, sub, s, r.query, r.output, r.warnings, r.options_dry_run)
            # the answer lists the objects as they were found, as upstream
            deleted.append(copy.deepcopy(obj))
            try:
                await self._delete_current(inner, obj, int(meta["resourceVersion"]), options)
            except errors.APIError as e:
                if e.code != 404:  # gone meanwhile: nothing left to do
                    raise
        return self.respond(r, listing.list_body(s, deleted, str(await self.objects.store.current_revision())))

    async def _delete_current(self, r: Request, obj: Obj, mod_rev: int, options: Obj) -> tuple[Obj, Optional[Obj]]:
        """Check (preconditions, validating admission) and delete `obj` at `mod_rev`. A write
        made meanwhile does not fail the delete: as upstream's store, the object is re-read and
        checked and deleted again. Returns the object last seen and `_delete_object`'s answer."""
        s = r.strategy
        for _ in range(_MAX_PATCH_RETRIES):
            check_preconditions(s, obj, options)
            await self._admit(self.validating, "DELETE", r, None, obj)
            try:
                return obj, await self._delete_object(r, obj, mod_rev, options)
            except errors.APIError as e:
                if e.code != 409:
                    raise
            kv = await self._get_current(r)
            obj, mod_rev = self.objects.decode(kv, s), kv.mod_revision
        raise errors.conflict(s.resource, s.group, r.info.name, errors.OBJECT_MODIFIED)


_GO_TYPES = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


def _check_metadata_shape(obj: Obj, what: str) -> None:
    """A patched object (or apply configuration) whose metadata, name or namespace has the
    wrong JSON type cannot become an object: 422 on the patch (as upstream's failed
    decode of the patched JSON), 400 for apply (its failed typed conversion), before the
    URL's name is written over it."""
    meta = obj.get("metadata")
    problems = []
    if meta is not None and not isinstance(meta, dict):
        problems.append(("metadata", f"json: cannot unmarshal {_GO_TYPES.get(type(meta), 'value')} into Go struct "
                                     "field .metadata of type v1.ObjectMeta"))
    elif isinstance(meta, dict):
        for f in ("name", "namespace", "generateName", "resourceVersion", "uid"):
            v = meta.get(f)
            if v is not None and not isinstance(v, str):
                problems.append((f, f"json: cannot unmarshal {_GO_TYPES.get(type(v), 'value')} into Go struct "
                                    f"field ObjectMeta.metadata.{f} of type string"))
                break
    if not problems:
        return
    detail = problems[0][1]
    if what == "apply":
        raise errors.bad_request(f"error decoding YAML: {detail}")
    raise errors.invalid("", "", "", [Cause("FieldValueInvalid", "patch",
                                            f"Invalid value: {go_quote_json(obj)}: {detail}")])


def go_quote_json(obj: Any) -> str:
    import orjson

    return go_quote(orjson.dumps(obj).decode())


def warning_header(text: str) -> str:
    """An RFC 7234 Warning header value with code 299, as upstream sends warnings."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


class Validator:
    """Schema, object-meta and strategy validation in one place."""

    def decode_check(self, s: Strategy, obj: Obj) -> tuple[list[Cause], list[str]]:
        """(JSON type errors, unknown field paths) of a request body."""
        from kybernetes.api import validation

        causes, unknown = validation.validate_schema_for(obj, s.group, s.version, s.kind)
        return validation.decode_errors(causes), unknown

    def validate(self, s: Strategy, obj: Obj, old: Optional[Obj], subresource: str = "") -> list[Cause]:
        from kybernetes.api import validation

        causes = validation.validate_object_meta(obj, namespaced=s.namespaced, name_format=s.name_format)
        if causes:
            return causes
        # unknown fields were reported (and pruned) when the body was decoded: not again
        schema_causes, _ = validation.validate_schema_for(obj, s.group, s.version, s.kind, strict_unknown=False)
        causes = [c for c in schema_causes if c.reason != validation.DECODE_ERROR_REASON]
        if not causes:
            if old is None:
                causes = s.validate(obj)
            elif subresource == "ephemeralcontainers":
                causes = s.validate_ephemeral_update(obj, old)
            else:
                causes = s.validate_update(obj, old)
        return causes

    def prune(self, s: Strategy, obj: Obj) -> None:
        from kybernetes.api import validation

        validation.prune_unknown(obj, s.group, s.version, s.kind)


def _PODS_STRATEGY() -> Strategy:
    from kybernetes.api.catalog import default_catalog

    return default_catalog().lookup("", "v1", "pods")


# ---------------------------------------------------------------------- object meta rules
def prepare_new_meta(obj: Obj, s: Strategy) -> None:
    """Server-set metadata on create."""
    meta = obj["metadata"]
    meta["uid"] = new_uuid()
    meta["creationTimestamp"] = apimeta.now_rfc3339()
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(k, None)
    if s.tracks_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)


def patch_doc_rv(patch_doc: Any) -> Optional[str]:
    """The resourceVersion a merge/strategic patch pins, if any."""
    if isinstance(patch_doc, dict):
        return (patch_doc.get("metadata") or {}).get("resourceVersion")
    return None


def set_requester(csr: Obj, user: Any) -> None:
    """A CSR records who asked for it; clients cannot choose (upstream's CSR strategy)."""
    spec = csr.setdefault("spec", {})
    spec["username"] = user.name
    for k in ("uid", "groups", "extra"):
        spec.pop(k, None)
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}


def check_update_preconditions(s: Strategy, new: Obj, old: Obj, subresource: str) -> None:
    """What an update may not do to metadata: change the uid (a 409 precondition failure,
    as upstream) or add finalizers to an object that is being deleted (422)."""
    nm, om = new["metadata"], old["metadata"]
    if nm.get("uid") and nm["uid"] != om.get("uid"):
        raise errors.conflict(s.resource, s.group, om["name"],
                              f"Precondition failed: UID in precondition: {nm['uid']}, UID in object meta: {om.get('uid')}")
    if om.get("deletionTimestamp") and subresource != "status":
        added = [f for f in nm.get("finalizers") or [] if f not in (om.get("finalizers") or [])]
        if added:
            shown = ", ".join(f'"{f}"' for f in added)
            raise errors.invalid(s.kind, s.group, om["name"], [Cause(
                "FieldValueForbidden", "metadata.finalizers",
                f"Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{shown}}}")])


def carry_meta(new: Obj, old: Obj, *, reset: tuple[str, ...] = ()) -> None:
    """Fields of metadata an update may not change are taken from the stored object;
    `reset` names more of them (what a status write may not touch)."""
    nm, om = new["metadata"], old["metadata"]
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)
    nm.pop("selfLink", None)
    for k in reset:
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)


def finalized(obj: Obj) -> bool:
    """A terminating object with no finalizers left is gone (namespaces also wait for
    spec.finalizers; pods on a node wait for the kubelet)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    kind = obj.get("kind")
    if kind == "Namespace" and obj.get("apiVersion") == "v1":
        return not (obj.get("spec") or {}).get("finalizers")
    if kind == "Pod" and obj.get("apiVersion") == "v1":
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed") or \
            meta.get("deletionGracePeriodSeconds") == 0
    return True


def delete_options(r: Request, body: Optional[Obj]) -> Obj:
    if body is not None:
        # a body that does not decode into DeleteOptions is 400 (never "no options")
        from kybernetes.api import validation

        if not isinstance(body, dict):
            raise errors.bad_request(validation.cannot_handle_message(
                "DeleteOptions", "v1", "json: cannot unmarshal non-object into Go value of type v1.DeleteOptions"))
        causes, _ = validation.validate_schema_for(body, "", "v1", "DeleteOptions")
        decode = validation.decode_errors(causes)
        if decode:
            raise errors.bad_request(validation.cannot_handle_message("DeleteOptions", "v1", decode[0].message))
    opts: Obj = dict(body or {})
    q = r.http.query
    if "gracePeriodSeconds" in q:
        from kybernetes.apiserver.queryparams import as_int64

        grace = as_int64("gracePeriodSeconds", q["gracePeriodSeconds"])
        if grace is not None:
            opts["gracePeriodSeconds"] = grace
    # the query's options decode into the same DeleteOptions fields as the body's
    both_set = ("propagationPolicy" in q or opts.get("propagationPolicy") is not None) \
        and ("orphanDependents" in q or opts.get("orphanDependents") is not None)
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q and "propagationPolicy" not in opts:
        if q["orphanDependents"].lower() == "true":
            opts["propagationPolicy"] = "Orphan"
    if "dryRun" in q:  # the query's dryRun is validated like the body's (upstream ValidateDryRun)
        bad = fieldmanager.dry_run_error(q.getall("dryRun"))
        if bad:
            raise errors.invalid("DeleteOptions", "", "", [Cause(*bad)])
    dry = opts.get("dryRun")
    if dry:
        bad = fieldmanager.dry_run_error(dry if isinstance(dry, list) else [dry])
        if bad:
            raise errors.invalid("DeleteOptions", "", "", [Cause(*bad)])
        r.options_dry_run = True
    pol = opts.get("propagationPolicy")
    causes = []
    if both_set:
        causes.append(Cause("FieldValueInvalid", "propagationPolicy",
                            f"Invalid value: {go_quote(str(pol))}: orphanDependents and deletionPropagation "
                            "cannot be both set"))
    if pol is not None and pol not in ("Orphan", "Foreground", "Background"):
        causes.append(Cause(
            "FieldValueNotSupported", "propagationPolicy",
            f'Unsupported value: {go_quote(str(pol))}: supported values: "Foreground", "Background", "Orphan", "nil"'))
    if causes:
        raise errors.invalid("DeleteOptions", "", "", causes)
    return opts


def check_preconditions(s: Strategy, obj: Obj, options: Obj) -> None:
    pre = options.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise errors.conflict(s.resource, s.group, meta["name"],
                              f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise errors.conflict(s.resource, s.group, meta["name"],
                              f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {meta.get('resourceVersion')}")


def status_details(s: Strategy, obj: Obj) -> Obj:
    d: Obj = {"name": obj["metadata"]["name"], "kind": s.resource, "uid": obj["metadata"].get("uid")}
    if s.group:
        d["group"] = s.group
    return d


def to_scale(s: Strategy, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a scalable object."""
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    sel = spec.get("selector")
    out: Obj = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if sel:
        out["status"]["selector"] = selector_string(sel)
    return out


def selector_string(sel: Obj) -> str:
    """A selector as the label-selector string Scale.status.selector carries (plain maps
    for replication controllers, metav1.LabelSelector otherwise)."""
    from kybernetes.api import selectors

    if "matchLabels" in sel or "matchExpressions" in sel:
        return str(selectors.from_label_selector(sel))
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
