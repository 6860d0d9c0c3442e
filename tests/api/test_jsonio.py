"""API bodies encoded by orjson read back exactly as the json module would have written them."""

from __future__ import annotations

import json

from skyd.api.jsonio import encode, json_response


def test_same_document_as_json_for_what_routes_return() -> None:
    data = {"jobs": [{"id": 7, "cost": 1.25, "name": "é", "tags": None, "ok": True}], "n": 0}
    assert json.loads(encode(data)) == json.loads(json.dumps(data))


def test_int_keys_are_written_as_strings_like_json() -> None:
    assert json.loads(encode({1: "a"})) == {"1": "a"}


def test_ints_past_64_bits_fall_back_to_json() -> None:
    # orjson refuses them; an echo of a hostile value must still answer, not 500
    assert json.loads(encode({"n": 2**70})) == {"n": 2**70}


def test_response_is_json_with_status_and_headers() -> None:
    response = json_response({"a": 1}, status=201, headers={"X-Test": "1"})
    assert response.status == 201
    assert response.content_type == "application/json"
    assert response.charset == "utf-8"
    assert response.headers["X-Test"] == "1"
    assert response.body == b'{"a":1}'
