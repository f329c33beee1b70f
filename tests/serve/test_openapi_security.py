"""What the independent OpenAPI fuzzer (schemathesis ``--checks all``) found, pinned fast.

1. Without an api_key the document declared a bearer scheme on ``GET /v1/results`` (and the
   other keyed routes) that nothing checked: the document now states the security of each
   configuration.
2. Credentials come before anything else: a STOW-RS without them answered 415 (the body)
   before 401 when the document asked for them.
3. ``POST /v1/predictions`` refused bodies its schema accepted: the request bodies now say
   what can be said in a schema (a non-empty file), and the fuzzer's settings
   (``tests/serve/fuzz/schemathesis.toml``) list the content answers no schema can state,
   which the document lists with their codes.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings

KEY = "s3cret"
FUZZ_CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
KEYED_OPERATIONS = {
    ("/v1/predictions", "post"),
    ("/v1/results", "get"),
    ("/dicomweb/studies", "post"),
    ("/dicomweb/studies/{study}", "get"),
    ("/dicomweb/studies/{study}/series/{series}/instances/{instance}", "get"),
}
# schemathesis' positive_data_acceptance default: what a schema-valid request may get
FUZZER_ACCEPTS = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200014827b4710000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def apps(bundle_dir: Path, ready_waiter) -> Iterator[dict[str, TestClient]]:
    """``plain`` (no api_key) and ``keyed`` apps, started."""
    with contextlib.ExitStack() as stack:
        opened = {}
        for name, key in {"plain": None, "keyed": KEY}.items():
            client = TestClient(create_app(ServeSettings(bundle=bundle_dir, api_key=key)))
            opened[name] = stack.enter_context(client)
            ready_waiter(client)
        yield opened


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_without_a_key_the_document_promises_no_check(apps):
    """Fuzzer: ``GET /v1/results`` accepted an invalid Authorization with no key configured,
    although the document declared a security scheme."""
    plain = apps["plain"].get("/openapi.json").json()
    assert "securitySchemes" not in plain.get("components", {})
    for path, method, operation in operations(plain):
        assert "security" not in operation, (path, method)
        assert "401" not in operation["responses"], (path, method)
    # what the document says is what the service does: any Authorization is ignored
    wrong = {"Authorization": "Bearer not-the-key"}
    assert apps["plain"].get("/v1/results", headers=wrong).status_code == 200

    keyed = apps["keyed"].get("/openapi.json").json()
    assert keyed["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    secured = {(p, m) for p, m, operation in operations(keyed) if operation.get("security")}
    assert secured == KEYED_OPERATIONS
    for path, method in KEYED_OPERATIONS:
        assert "unauthorized" in str(keyed["paths"][path][method]["responses"]["401"])
    assert apps["keyed"].get("/v1/results", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("method", "url", "request_args"),
    [
        ("POST", "/dicomweb/studies", {}),  # no Content-Type, no body: 415 if read first
        ("POST", "/dicomweb/studies", {"content": b"x", "headers": {"Content-Type": "a/b"}}),
        ("POST", "/v1/predictions", {"params": {"format": "xml"}}),  # 422 if read first
        ("GET", "/v1/results", {"params": {"limit": 0, "since": "yesterday"}}),
        ("GET", f"/dicomweb/studies/{'1.' * 40}", {}),  # path too long: 422 if read first
    ],
)
def test_credentials_are_checked_before_anything_else(apps, method, url, request_args):
    """Fuzzer: ``POST /dicomweb/studies`` without credentials answered 415 before 401."""
    response = apps["keyed"].request(method, url, **request_args)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def _content_codes(operation: dict[str, Any]) -> dict[int, set[str]]:
    """status -> documented error codes of an operation's 4xx answers."""
    found: dict[int, set[str]] = {}
    for status, response in operation["responses"].items():
        examples = response.get("content", {}).get("application/json", {}).get("examples", {})
        if status.startswith("4") and examples:
            found[int(status)] = set(examples)
    return found


def test_the_upload_document_says_what_a_schema_can_and_the_fuzzer_is_told_the_rest(apps):
    """Fuzzer: ``POST /v1/predictions`` answered 415 to a body its schema accepts."""
    client = apps["plain"]
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/predictions"]["post"]
    for media, content in operation["requestBody"]["content"].items():
        body = content["schema"]
        file = body["properties"]["file"] if media == "multipart/form-data" else body
        assert file["minLength"] == 1, media  # an empty file is not schema-valid
    stow = schema["paths"]["/dicomweb/studies"]["post"]["requestBody"]["content"]
    assert stow["multipart/related"]["schema"]["minLength"] == 1

    # schemathesis' own case: a PNG in the 'file' part is refused by reading it (415)
    response = client.post("/v1/predictions", files={"file": ("file.png", PNG)})
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media"
    documented = _content_codes(operation)
    assert "unsupported_media" in documented[415]
    assert {"not_a_cine", "not_ultrasound", "corrupt_pixel_data"} <= documented[422]
    assert "over_limit" in documented[413]

    # the fuzzer is told exactly those content answers for this operation, nothing more
    config = tomllib.loads(FUZZ_CONFIG.read_text())
    (upload,) = [op for op in config["operations"] if op["include-name"] == "POST /v1/predictions"]
    statuses = upload["checks"]["positive_data_acceptance"]["expected-statuses"]
    assert statuses[: len(FUZZER_ACCEPTS)] == FUZZER_ACCEPTS
    assert sorted(int(s) for s in statuses[len(FUZZER_ACCEPTS) :]) == [413, 415, 422]


@pytest.mark.parametrize(
    "query",
    [
        {"until": "0.5"},  # Unix seconds: pydantic reads them, OpenAPI's date-time does not
        {"since": "1700000000"},
        {"since": "2020-13-01"},  # not a date
        {"offset": 2**63},  # past a 64-bit SQL OFFSET: was a 500
    ],
)
def test_results_refuse_what_the_document_does_not_accept(apps, query):
    """Fuzzer (``ST201`` and ``ST101``): values outside the documented types were accepted
    (``until=0.5``) or reached the database (``offset`` over 2**63 - 1 answered 500)."""
    response = apps["plain"].get("/v1/results", params=query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_results_take_the_documented_extremes(apps):
    client = apps["plain"]
    assert client.get("/v1/results", params={"offset": 2**63 - 1}).json()["results"] == []
    for since in ("2020-01-01T00:00:00", "2020-01-01T00:00:00Z", "2020-01-01 00:00+01:00"):
        assert client.get("/v1/results", params={"since": since}).status_code == 200, since


def test_results_take_a_bare_date_as_its_midnight_as_documented(apps):
    """``since=2026-01-01`` worked before the fuzzer's fixes and is the docs' example: the
    document declares a date beside a date-time, and the filter reads it as 00:00 UTC."""
    client = apps["plain"]
    assert client.get("/v1/results", params={"since": "2020-01-01"}).status_code == 200
    future = client.get("/v1/results", params={"since": "2999-01-01"}).json()
    assert future["results"] == [] and future["total"] == 0
    until = client.app.openapi()["paths"]["/v1/results"]["get"]["parameters"]
    schema = next(p for p in until if p["name"] == "until")["schema"]
    formats = {option.get("format") for option in schema["anyOf"]}
    assert {"date-time", "date"} <= formats
