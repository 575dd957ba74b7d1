"""Every route of the OpenAPI document, with account A's key against account B: refused each time."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import ALICE


def test_every_route_refuses_alice_on_bobs_resources(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    walked = []
    for path, methods in document["paths"].items():
        for method in methods:
            url = path.replace("{account_id}", "bob")
            response = client.request(method.upper(), url, headers=ALICE, params={"account_id": "bob"}, json={})
            walked.append((method, path))
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            assert response.json()["error"]["message"]
    assert len(walked) >= 10
    # without any key, the same walk is 401 everywhere
    for path, methods in document["paths"].items():
        for method in methods:
            response = client.request(method.upper(), path.replace("{account_id}", "bob"), json={})
            assert response.status_code == 401, (method, path)
