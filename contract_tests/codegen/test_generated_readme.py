"""What the project's templates (clients/openapi-python-client/) give users of `generated/`.

The client's defaults follow openapi.yaml's security scheme and have a finite timeout, and the
generated README's Python example runs as written against a served mock gateway.
"""

from __future__ import annotations

import re
from pathlib import Path

import respx
from boogu_image_client import AuthenticatedClient, Client
from boogu_image_client.api.status import get_request_status

from contract_tests.spec_helpers import load_spec
from mock_gateway.testing import MockGateway

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "generated" / "README.md"
README_BASE_URL = "http://127.0.0.1:8080"


def test_the_default_auth_header_is_the_specs_security_scheme_with_the_bare_key() -> None:
    scheme = load_spec()["components"]["securitySchemes"]["subscriptionKey"]
    assert (scheme["type"], scheme["in"]) == ("apiKey", "header")
    client = AuthenticatedClient(base_url="http://gateway.test", token="my-key")
    with respx.mock(base_url="http://gateway.test") as router:
        route = router.get("/v2/requests/status/r1").respond(404, json={"error": "Not Found", "message": "-"})
        get_request_status.sync("r1", client=client)
    sent = route.calls.last.request.headers
    assert sent[scheme["name"]] == "my-key"
    assert "authorization" not in sent


def test_both_clients_time_out_by_default() -> None:
    for client in (Client(base_url="http://gateway.test"), AuthenticatedClient("http://gateway.test", "k")):
        for httpx_client in (client.get_httpx_client(), client.get_async_httpx_client()):
            timeout = httpx_client.timeout
            assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5.0, 30.0, 30.0, 30.0)


def test_the_readmes_python_example_runs_against_the_mock(capsys) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.M | re.S)
    assert blocks, "the generated README has no Python example"
    assert all(README_BASE_URL in block for block in blocks)
    with MockGateway(served=True) as gateway:
        for block in blocks:
            exec(compile(block.replace(README_BASE_URL, gateway.base_url), str(README), "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.strip() in {"QUEUED", "PROCESSING"}
