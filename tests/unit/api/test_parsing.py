"""routing/api/parsing.py: what of the client's request is forwarded, and what is refused."""

import pytest

from routing.api.parsing import forwarded_headers, forwarded_query, query_flag, response_id
from routing.errors import GatewayError


@pytest.mark.parametrize("query, expected", [
    ("", ""),
    ("include[]=a&limit=5", "include[]=a&limit=5"),  # untouched, byte for byte
    ("api-version=2099-01-01", ""),
    ("API-VERSION=1&limit=5", "limit=5"),
    ("api%2Dversion=1&limit=5", "limit=5"),
    ("limit=5&api-version=1&api-version=2", "limit=5"),
    (" api-version =1", ""),
])
def test_the_client_never_chooses_the_api_version(query, expected):
    assert forwarded_query(query) == expected


def test_stream_flag_is_parsed_not_searched():
    assert query_flag("stream=true", "stream") and query_flag("a=1&stream=1", "stream")
    assert not query_flag("nostream=true", "stream") and not query_flag("stream=false", "stream")


def test_forwarded_headers_are_the_listed_ones_within_their_limit():
    meta = {"HTTP_OPENAI_BETA": "responses=v1", "HTTP_X_CLIENT_REQUEST_ID": "abc", "HTTP_AUTHORIZATION": "Bearer x",
            "HTTP_COOKIE": "a=b"}
    assert forwarded_headers(meta) == {"openai-beta": "responses=v1", "x-client-request-id": "abc"}
    with pytest.raises(GatewayError) as info:
        forwarded_headers({"HTTP_OPENAI_BETA": "x" * 513})
    assert (info.value.status, info.value.param) == (400, "openai-beta")


@pytest.mark.parametrize("value", [".", "..", "a\x00b", "a\nb", "x" * 257])
def test_response_ids_that_cannot_be_one_path_segment_are_refused(value):
    with pytest.raises(GatewayError) as info:
        response_id(value)
    assert (info.value.status, info.value.code) == (400, "invalid_response_id")


def test_ordinary_response_ids_pass():
    assert response_id("resp_0123abc") == "resp_0123abc" and response_id("a?b#c") == "a?b#c"
