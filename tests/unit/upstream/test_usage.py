"""routing/usage.py: both usage dialects, optional details, junk ignored."""

from routing.upstream.usage import Usage, from_payload


def test_responses_usage_with_details():
    payload = {"response": {"usage": {"input_tokens": 10, "output_tokens": 16, "total_tokens": 26,
                                      "input_tokens_details": {"cached_tokens": 4},
                                      "output_tokens_details": {"reasoning_tokens": 7}}}}
    assert from_payload(payload) == Usage(10, 16, 26, 4, 7)


def test_azure_usage_without_details():
    assert from_payload({"usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}) == Usage(3, 2, 5)


def test_chat_usage():
    payload = {"usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17,
                         "prompt_tokens_details": {"cached_tokens": 2},
                         "completion_tokens_details": {"reasoning_tokens": 1}}}
    assert from_payload(payload) == Usage(14, 3, 17, 2, 1)


def test_null_or_odd_usage_is_none_or_filtered():
    assert from_payload({"usage": None}) is None
    assert from_payload({"response": {"usage": None}}) is None
    assert from_payload([]) is None
    assert from_payload({"usage": {"input_tokens": True, "output_tokens": "7"}}) == Usage(None, None, None)
