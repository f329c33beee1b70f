"""The OpenAPI document is the contract: every answer of every route is documented there.

The walk starts from ``app.routes``. Each documented operation gets good and bad requests
(the ``probes`` fixture), including the service states that answer 500 and 503. Every
answer is checked against the app's own /openapi.json: its status is documented for that
path and method, its Content-Type is one documented for that status (and the body really
is that media type), a JSON body validates against the documented schema, an error code is
one of the documented examples, and the documented headers are present. Then the
converse: every documented status, media type and error code was seen. Every route
answers 405 with an Allow header.

CORS preflights (OPTIONS with ``cors_origins`` set) are answered by the middleware, not a
route, and stay out of the walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pydicom
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from starlette.routing import Mount, Route, WebSocketRoute

from labral.serve.http import health, predictions
from labral.serve.http.app import create_app
from labral.serve.http.deps import document_security, get_service
from labral.serve.http.results import ResultsPage
from labral.serve.http.schemas import ErrorBody, Health, ModelCard, Prediction, Readiness
from labral.serve.settings import ServeSettings

KEY = "s3cret"
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (ErrorBody, Health, ModelCard, Prediction, Readiness, ResultsPage)
}
STOW, STUDY, SR = (
    "/dicomweb/studies",
    "/dicomweb/studies/{study}",
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
)
# Not in the OpenAPI document by design: the documentation itself, the clinician page and
# its static files. A new route must be documented or added here on purpose.
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/", "/static"}
UNDOCUMENTED |= {"/samples"}  # only when samples_dir is set, as it is here
OTHER_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

State = Callable[[TestClient], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class Probe:
    """One request and the answer it must get (status, and error code when it fails)."""

    name: str
    method: str
    path: str
    status: int
    codes: frozenset[str] = frozenset()
    request: dict[str, Any] = field(default_factory=dict)
    state: State | None = None
    keyed: bool = False  # send it to the app that has an api_key
    url: Callable[[TestClient], str] | None = None  # the URL of a templated path

    def send(self, client: TestClient) -> Any:
        url = self.url(client) if self.url else self.path
        return client.request(self.method, url, **self.request)


# ---- service states -------------------------------------------------------------------
@contextlib.contextmanager
def not_ready(client: TestClient) -> Iterator[None]:
    service = client.app.state.service
    service.ready.clear()
    try:
        yield
    finally:
        service.ready.set()


@contextlib.contextmanager
def load_failed(client: TestClient) -> Iterator[None]:
    service = client.app.state.service
    service.load_error = "IncompatibleBundleError: model.ts is missing"
    try:
        with not_ready(client):
            yield
    finally:
        service.load_error = None


@contextlib.contextmanager
def no_bundle(client: TestClient) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.service, "bundle", None)
        yield


@contextlib.contextmanager
def busy(client: TestClient) -> Iterator[None]:
    service = client.app.state.service
    service.pending = service.settings.max_pending
    try:
        yield
    finally:
        service.pending = 0


@contextlib.contextmanager
def scoring_too_slow(client: TestClient) -> Iterator[None]:
    async def never(data: bytes, *, spatial: bool = False) -> None:
        await asyncio.sleep(5)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.service, "score", never)
        patch.setattr(client.app.state.settings, "request_timeout_s", 0.05)
        yield


@contextlib.contextmanager
def model_raises(client: TestClient) -> Iterator[None]:
    def broken(x: object) -> None:
        raise RuntimeError("boom")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.service.batcher, "_predict", broken)
        yield


@contextlib.contextmanager
def service_raises(client: TestClient) -> Iterator[None]:
    """Every route that depends on the scoring service hits an unexpected exception."""

    def broken() -> None:
        raise RuntimeError("boom")

    client.app.dependency_overrides[get_service] = broken
    try:
        yield
    finally:
        client.app.dependency_overrides.clear()


@contextlib.contextmanager
def exposition_raises(client: TestClient) -> Iterator[None]:
    def broken(registry: object) -> bytes:
        raise RuntimeError("boom")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(health, "generate_latest", broken)
        yield


@contextlib.contextmanager
def small_upload_limit(client: TestClient) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.settings, "max_upload_bytes", 10_000)
        yield


@contextlib.contextmanager
def source_without_study(client: TestClient) -> Iterator[None]:
    real = predictions.read_source_header

    def header(data: bytes) -> pydicom.Dataset:
        ds = real(data)
        del ds.StudyInstanceUID
        return ds

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictions, "read_source_header", header)
        yield


@contextlib.contextmanager
def store_raises(client: TestClient) -> Iterator[None]:
    """The results store, the spool and the SR archive hit an unexpected exception."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    stateful = client.app.state.stateful
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stateful.store, "page", broken)
        patch.setattr(stateful.intake, "receive", broken)
        patch.setattr(stateful.archive, "find", broken)
        yield


@contextlib.contextmanager
def store_refuses_rows(client: TestClient) -> Iterator[None]:
    """The results store refuses every row (an upload is then answered 503)."""

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("database is locked")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.stateful.store, "add_result", broken)
        yield


@contextlib.contextmanager
def stow_too_slow(client: TestClient) -> Iterator[None]:
    async def never(entry: object) -> None:
        await asyncio.sleep(5)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.app.state.stateful.intake, "submit", never)
        patch.setattr(client.app.state.settings, "request_timeout_s", 0.05)
        yield


def stow_body(*parts: bytes, boundary: str = "labral-test-boundary") -> dict[str, Any]:
    """A STOW-RS request: one application/dicom part per instance."""
    body = b"".join(
        f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
        for part in parts
    )
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return raw(body + f"\r\n--{boundary}--".encode(), media)


def sr_urls(client: TestClient, dicom: bytes) -> tuple[str, str]:
    """(study URL, SR instance URL) of an SR the app made (a STOW-RS of ``dicom`` first)."""
    request = stow_body(dicom)
    request["headers"]["Authorization"] = f"Bearer {KEY}"
    answer = client.post(STOW, **request)
    assert answer.status_code == 200, answer.text
    url = answer.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    path = url.removeprefix(str(client.base_url))
    return path.split("/series/")[0], path


# ---- probes ---------------------------------------------------------------------------
def raw(data: bytes, media: str | None, **params: str) -> dict[str, Any]:
    headers = {"Content-Type": media} if media else {}
    return {"content": data, "headers": headers, "params": params}


def upload_as(media: str, data: bytes) -> dict[str, Any]:
    if media == "multipart/form-data":
        return {"files": {"file": ("clip.dcm", data)}}
    return raw(data, media)


@pytest.fixture(scope="module")
def probes(clips, bad_inputs) -> list[Probe]:
    dicom = clips["bright.dcm"].read_bytes()
    mp4 = clips["bright.mp4"].read_bytes()
    jpeg = clips["jpeg.dcm"].read_bytes()
    unknown_syntax = jpeg.replace(b"1.2.840.10008.1.2.4.50", b"1.2.840.10008.1.2.4.99", 1)
    assert unknown_syntax != jpeg
    pred, model = "/v1/predictions", "/v1/model"
    P = Probe
    found = [
        P("multipart DICOM", "POST", pred, 200, request=upload_as("multipart/form-data", dicom)),
        P("video", "POST", pred, 200, request=raw(mp4, "video/mp4")),
        P("with preview", "POST", pred, 200, request=raw(dicom, "application/dicom", preview="1")),
        P("SR", "POST", pred, 200, request=raw(dicom, "application/dicom", format="sr")),
        P("right key", "POST", pred, 200, keyed=True, request={"content": dicom, "headers": {
            "Content-Type": "application/dicom", "Authorization": f"Bearer {KEY}"}}),
        P("PDF", "POST", pred, 415, frozenset({"unsupported_media"}),
          raw(b"%PDF-1.4\n" + bytes(4000), "application/octet-stream")),
        P("unknown transfer syntax", "POST", pred, 415,
          frozenset({"unsupported_transfer_syntax"}), raw(unknown_syntax, "application/dicom")),
        P("no Content-Type", "POST", pred, 415, frozenset({"unsupported_media_type"}),
          raw(dicom, None)),
        P("multipart without a file part", "POST", pred, 400, frozenset({"missing_file"}),
          {"data": {"note": "x"}, "files": {"other": ("a", b"abc")}}),
        P("multipart without boundary", "POST", pred, 422, frozenset({"invalid_request"}),
          raw(b"--x\r\n\r\n", "multipart/form-data")),
        P("bad format", "POST", pred, 422, frozenset({"invalid_request"}),
          raw(dicom, "application/dicom", format="xml")),
        P("SR of a video", "POST", pred, 422, frozenset({"sr_needs_dicom"}),
          raw(mp4, "video/mp4", format="sr")),
        P("SR of an incomplete source", "POST", pred, 422, frozenset({"sr_source_incomplete"}),
          raw(dicom, "application/dicom", format="sr"), source_without_study),
        P("over max_upload_bytes", "POST", pred, 413, frozenset({"payload_too_large"}),
          raw(dicom, "application/dicom"), small_upload_limit),
        P("no key", "POST", pred, 401, frozenset({"unauthorized"}),
          raw(dicom, "application/dicom"), keyed=True),
        P("wrong key", "POST", pred, 401, frozenset({"unauthorized"}), {"content": dicom,
          "headers": {"Content-Type": "application/dicom", "Authorization": "Bearer nope"}},
          keyed=True),
        P("not ready", "POST", pred, 503, frozenset({"not_ready"}),
          raw(dicom, "application/dicom"), not_ready),
        P("busy", "POST", pred, 503, frozenset({"busy"}), raw(dicom, "application/dicom"), busy),
        P("timeout", "POST", pred, 503, frozenset({"timeout"}),
          raw(dicom, "application/dicom"), scoring_too_slow),
        P("model raises", "POST", pred, 500, frozenset({"internal_error"}),
          raw(dicom, "application/dicom"), model_raises),
        P("store refuses the row", "POST", pred, 503, frozenset({"store_unavailable"}),
          raw(dicom, "application/dicom"), store_refuses_rows),
        P("model card", "GET", model, 200),
        P("model card without a key", "GET", model, 200, keyed=True),
        P("model card, no bundle", "GET", model, 503, frozenset({"not_ready"}), state=no_bundle),
        P("model card, bug", "GET", model, 500, frozenset({"internal_error"}),
          state=service_raises),
        P("health", "GET", "/healthz", 200),
        P("health, failed load", "GET", "/healthz", 503, state=load_failed),
        P("health, bug", "GET", "/healthz", 500, frozenset({"internal_error"}),
          state=service_raises),
        P("ready", "GET", "/readyz", 200),
        P("ready, loading", "GET", "/readyz", 503, state=not_ready),
        P("ready, failed load", "GET", "/readyz", 503, state=load_failed),
        P("ready, bug", "GET", "/readyz", 500, frozenset({"internal_error"}),
          state=service_raises),
        P("metrics", "GET", "/metrics", 200),
        P("metrics without a key", "GET", "/metrics", 200, keyed=True),
        P("metrics, bug", "GET", "/metrics", 500, frozenset({"internal_error"}),
          state=exposition_raises),
    ]  # fmt: skip
    found += results_and_dicomweb_probes(dicom, bad_inputs["ct_image"][0])
    for name, (data, media, status, codes) in bad_inputs.items():
        if status is not None:  # truncated_mp4 may fail either way; every 4xx is fine there
            found.append(P(name, "POST", pred, status, frozenset(codes), raw(data, media)))
    return found


def results_and_dicomweb_probes(dicom: bytes, ct: bytes) -> list[Probe]:
    """GET /v1/results, STOW-RS and WADO-RS: every documented answer."""
    results, P, key = "/v1/results", Probe, {"Authorization": f"Bearer {KEY}"}
    keyed_stow = stow_body(dicom)
    keyed_stow["headers"].update(key)
    no_parts = raw(b"--b--\r\n", 'multipart/related; type="application/dicom"; boundary=b')

    def study(client: TestClient) -> str:
        return sr_urls(client, dicom)[0]

    def instance(client: TestClient) -> str:
        return sr_urls(client, dicom)[1]

    def nowhere(client: TestClient) -> str:
        return "/dicomweb/studies/1.2.3/series/4.5/instances/6.7"

    def not_a_uid(client: TestClient) -> str:
        return f"/dicomweb/studies/{'1.' * 40}/series/4.5/instances/6.7"

    return [
        P("results", "GET", results, 200),
        P("results with the key", "GET", results, 200, keyed=True, request={"headers": key}),
        P("results page", "GET", results, 200, request={"params": {"decision": "true",
          "since": "2020-01-01T00:00:00", "limit": 5}}),
        P("results, no key", "GET", results, 401, frozenset({"unauthorized"}), keyed=True),
        P("results, bad limit", "GET", results, 422, frozenset({"invalid_request"}),
          {"params": {"limit": 0}}),
        P("results, store down", "GET", results, 500, frozenset({"internal_error"}),
          state=store_raises),
        P("STOW one", "POST", STOW, 200, request=stow_body(dicom)),
        P("STOW with the key", "POST", STOW, 200, keyed=True, request=keyed_stow),
        P("STOW one of two", "POST", STOW, 202, request=stow_body(dicom, ct)),
        P("STOW none", "POST", STOW, 409, request=stow_body(ct)),
        P("STOW, no key", "POST", STOW, 401, frozenset({"unauthorized"}), stow_body(dicom),
          keyed=True),
        P("STOW, not multipart", "POST", STOW, 415, frozenset({"unsupported_media_type"}),
          raw(dicom, "application/dicom")),
        P("STOW, too large", "POST", STOW, 413, frozenset({"payload_too_large"}),
          stow_body(dicom), small_upload_limit),
        P("STOW, no part", "POST", STOW, 400, frozenset({"missing_file"}), no_parts),
        P("STOW, no boundary", "POST", STOW, 422, frozenset({"invalid_request"}),
          raw(b"x", 'multipart/related; type="application/dicom"')),
        P("STOW, not ready", "POST", STOW, 503, frozenset({"not_ready"}), stow_body(dicom),
          not_ready),
        P("STOW, busy", "POST", STOW, 503, frozenset({"busy"}), stow_body(dicom), busy),
        P("STOW, timeout", "POST", STOW, 503, frozenset({"timeout"}), stow_body(dicom),
          stow_too_slow),
        P("STOW, spool down", "POST", STOW, 500, frozenset({"internal_error"}),
          stow_body(dicom), store_raises),
        P("WADO study", "GET", STUDY, 200, url=study),
        P("WADO study, with the key", "GET", STUDY, 200, keyed=True, url=study,
          request={"headers": key}),
        P("WADO study, unknown", "GET", STUDY, 404, frozenset({"not_found"}), url=nowhere),
        P("WADO study, no key", "GET", STUDY, 401, frozenset({"unauthorized"}), keyed=True,
          url=nowhere),
        P("WADO study, archive down", "GET", STUDY, 500, frozenset({"internal_error"}),
          state=store_raises, url=nowhere),
        P("WADO study, not a UID", "GET", STUDY, 422, frozenset({"invalid_request"}),
          url=lambda client: not_a_uid(client).split("/series/")[0]),
        P("WADO SR", "GET", SR, 200, url=instance),
        P("WADO SR, unknown", "GET", SR, 404, frozenset({"not_found"}), url=nowhere),
        P("WADO SR, no key", "GET", SR, 401, frozenset({"unauthorized"}), keyed=True,
          url=nowhere),
        P("WADO SR, archive down", "GET", SR, 500, frozenset({"internal_error"}),
          state=store_raises, url=nowhere),
        P("WADO SR, not a UID", "GET", SR, 422, frozenset({"invalid_request"}), url=not_a_uid),
    ]  # fmt: skip


def accepted_media_probes(schema: dict[str, Any], dicom: bytes) -> list[Probe]:
    """One upload per request media type the document lists: each must be accepted."""
    body = schema["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    return [
        Probe(f"upload as {media}", "POST", "/v1/predictions", 200, request=upload_as(media, dicom))
        for media in body
    ]


# ---- the apps -------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]  # what the route serves; static mounts serve GET and HEAD
    documented: bool  # in the OpenAPI document
    mount: bool


def walk_routes(app: FastAPI) -> list[RouteInfo]:
    """Every route of ``app.routes``, with included routers flattened (FastAPI >= 0.13x keeps
    them as one entry each; ``iter_route_contexts`` gives their routes with full paths)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        contexts = [(route, route) for route in app.routes]
    else:
        contexts = [(c, c.original_route) for c in iter_route_contexts(app.routes)]
    found = []
    for context, original in contexts:
        if isinstance(original, WebSocketRoute):
            continue  # /v1/stream: AsyncAPI, not OpenAPI (tests/serve/test_stream*.py)
        mount = isinstance(original, Mount)
        assert mount or isinstance(original, Route), f"unexpected route {original!r}"
        methods = {"GET", "HEAD"} if mount else set(context.methods)
        documented = isinstance(original, APIRoute) and original.include_in_schema
        found.append(RouteInfo(context.path, frozenset(methods), documented, mount))
    return found


@pytest.fixture(scope="module")
def apps(bundle_dir, clips, ready_waiter) -> Iterator[dict[str, TestClient]]:
    """Two started apps: ``plain`` (no api_key) and ``keyed``; server errors become answers."""
    samples = next(iter(clips.values())).parent
    with contextlib.ExitStack() as stack:
        opened = {}
        for name, overrides in {"plain": {}, "keyed": {"api_key": KEY}}.items():
            settings = ServeSettings(bundle=bundle_dir, samples_dir=samples, **overrides)
            client = TestClient(create_app(settings), raise_server_exceptions=False)
            opened[name] = stack.enter_context(client)
            ready_waiter(client)
        yield opened


def media_type(response: Any) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def check_body(media: str, documented: dict[str, Any], response: Any) -> None:
    """The body is what its Content-Type says, and matches the documented schema."""
    schema = documented.get("schema", {})
    if media == "application/json":
        body = response.json()
        ref = schema.get("$ref", "")
        assert ref, f"JSON answer documented without a schema: {documented}"
        SCHEMA_MODELS[ref.rsplit("/", 1)[-1]].model_validate(body)
    elif media == "application/dicom":
        assert pydicom.dcmread(io.BytesIO(response.content)).SOPClassUID
    elif media == "text/plain":
        assert list(text_string_to_metric_families(response.text))
    elif media == "application/dicom+json":  # a PS3.18 store response
        answer = pydicom.Dataset.from_json(response.json())
        assert "ReferencedSOPSequence" in answer or "FailedSOPSequence" in answer
    elif media == "multipart/related":
        parts = multipart_parts(response)
        assert parts and all(pydicom.dcmread(io.BytesIO(p)).SOPClassUID for p in parts)
    else:
        raise AssertionError(f"no body check for {media}")


def multipart_parts(response: Any) -> list[bytes]:
    """The part bodies of a multipart answer (split on its boundary, headers dropped)."""
    params = dict(p.strip().split("=", 1) for p in response.headers["content-type"].split(";")[1:])
    boundary = params["boundary"].strip('"').encode()
    pieces = (b"\r\n" + response.content).split(b"\r\n--" + boundary)[1:]
    assert pieces and pieces[-1].startswith(b"--"), "no closing boundary"
    return [piece.partition(b"\r\n\r\n")[2] for piece in pieces[:-1]]


def check_documented(schema: dict[str, Any], probe: Probe, response: Any) -> tuple:
    """Assert the answer is documented; return (path, method, status, media, code) seen."""
    where = f"{probe.name}: {probe.method} {probe.path} -> {response.status_code}"
    operation = schema["paths"][probe.path][probe.method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{where} is not in the OpenAPI document"
    media = media_type(response)
    content = documented.get("content", {})
    assert media in content, f"{where} answered {media}, documented {list(content)}"
    check_body(media, content[media], response)
    for header in documented.get("headers", {}):
        assert header.lower() in response.headers, f"{where} lacks documented header {header}"
    code = None
    if "examples" in content[media]:
        code = response.json()["error"]["code"]
        assert code in content[media]["examples"], f"{where}: code {code} is undocumented"
    return probe.path, probe.method, response.status_code, media, code


def everything_documented(schema: dict[str, Any]) -> set[tuple]:
    documented = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media, doc in response.get("content", {}).items():
                    for code in doc.get("examples") or [None]:
                        documented.add((path, method.upper(), int(status), media, code))
    return documented


def test_every_answer_of_every_route_is_documented(apps, probes, clips):
    app = apps["plain"].app
    schemas = {name: client.get("/openapi.json").json() for name, client in apps.items()}
    schema = schemas["keyed"]  # the plain document is the keyed one without its security:
    assert document_security(copy.deepcopy(schema), auth_required=False) == schemas["plain"]
    operations = {(p, m.upper()) for p, item in schema["paths"].items() for m in item}
    routes = walk_routes(app)
    routed = {(r.path, method) for r in routes if r.documented for method in r.methods}
    assert routed == operations
    assert {r.path for r in routes if not r.documented} == UNDOCUMENTED
    probes = probes + accepted_media_probes(schema, clips["bright.dcm"].read_bytes())
    assert {(p.path, p.method) for p in probes} == operations, "an operation has no probe"

    seen = set()
    for probe in probes:
        client = apps["keyed" if probe.keyed else "plain"]
        with probe.state(client) if probe.state else contextlib.nullcontext():
            response = probe.send(client)
        assert response.status_code == probe.status, (probe.name, response.text[:300])
        if probe.codes:
            assert response.json()["error"]["code"] in probe.codes, (probe.name, response.text)
        seen.add(check_documented(schemas["keyed" if probe.keyed else "plain"], probe, response))
    missing = everything_documented(schema) - seen
    assert not missing, f"documented but never answered: {sorted(missing, key=str)}"


def test_only_scoring_and_results_need_the_api_key(apps, clips):
    """serve/README.md: the key is enforced on scoring and results (/v1/predictions,
    /v1/results, /dicomweb) whenever set; probes, /v1/model and /metrics stay open
    (Prometheus and Kubernetes send no key)."""
    keyed = apps["keyed"]
    schema = keyed.get("/openapi.json").json()
    secured = {
        (path, method.upper())
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    }
    assert secured == {
        ("/v1/predictions", "POST"),
        ("/v1/results", "GET"),
        (STOW, "POST"),
        (STUDY, "GET"),
        (SR, "GET"),
    }
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/v1/model", "/metrics", "/healthz", "/readyz", "/openapi.json", "/"):
        assert keyed.get(path).status_code == 200, path
    response = keyed.post(
        "/v1/predictions",
        content=clips["bright.dcm"].read_bytes(),
        headers={"Content-Type": "application/dicom"},
    )
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_every_route_answers_405_with_an_allow_header(apps, clips):
    client = apps["plain"]
    files = {"/static": "/static/app.js", "/samples": "/samples/bright.dcm"}
    study, instance = sr_urls(client, clips["bright.dcm"].read_bytes())
    templated = {STUDY: study, SR: instance}
    routes = walk_routes(client.app)
    assert len(routes) == len(UNDOCUMENTED) + 9
    for route in routes:
        allowed = set(route.methods)
        path = files[route.path] if route.mount else templated.get(route.path, route.path)
        for method in sorted(set(OTHER_METHODS) - allowed):
            response = client.request(method, path)
            where = f"{method} {path}"
            assert response.status_code == 405, (where, response.status_code)
            assert set(response.headers["allow"].split(", ")) == allowed, where
            assert ErrorBody.model_validate(response.json()).error.code == "method_not_allowed"
        if "GET" in allowed:  # and the route works: no 4xx/5xx for a plain GET
            assert client.get(path).status_code == 200, path
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404
    assert ErrorBody.model_validate(missing.json()).error.code == "not_found"
    assert ErrorBody.model_validate(client.get("/nope").json()).error.code == "not_found"
