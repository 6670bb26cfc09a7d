"""routing/upstream/rejections.py: the parameter named by an upstream's 400, in each known shape."""

import pytest

from routing.upstream.rejections import rejected_param


@pytest.mark.parametrize("payload, expected", [
    ({"error": {"message": "Unknown parameter: 'stream_options.include_usage'.", "type": "invalid_request_error",
                "param": "stream_options.include_usage", "code": "unknown_parameter"}}, "stream_options.include_usage"),
    ({"error": {"message": "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to "
                "'input'.", "type": "invalid_request_error", "param": "messages", "code": "unsupported_parameter"}},
     "messages"),
    ({"error": {"code": None, "message": "Unknown parameter: 'stream_options'."}}, "stream_options"),
    ({"error": {"message": "Unrecognized request argument supplied: functions"}}, "functions"),
    ({"error": {"message": "Invalid value for 'temperature': must be <= 2.", "param": "temperature",
                "code": "invalid_value"}}, ""),
    ({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}, ""),
    ({"error": "flat string"}, ""),
    ([1, 2], ""),
])
def test_names_the_refused_parameter_only(payload, expected):
    assert rejected_param(400, payload) == expected


def test_only_400_answers_count():
    body = {"error": {"param": "x", "code": "unknown_parameter", "message": "Unknown parameter: 'x'."}}
    assert rejected_param(400, body) == "x"
    assert rejected_param(404, body) == "" and rejected_param(500, body) == ""
