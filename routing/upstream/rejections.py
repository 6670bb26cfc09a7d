"""Which body parameter an upstream refused, read from its 400 answer.

This is the incident the gateway exists for (a proxy added `stream_options`, Azure said
`unknown_parameter`), so the log row names the parameter and ops can add a drop rule for
it. The shapes recognised (OpenAI and Azure; older Azure API versions; vLLM-style servers):

    {"error": {"code": "unknown_parameter", "param": "stream_options.include_usage",
               "message": "Unknown parameter: 'stream_options.include_usage'."}}
    {"error": {"code": "unsupported_parameter", "param": "messages",
               "message": "Unsupported parameter: 'messages'. In the Responses API, ..."}}
    {"error": {"message": "Unrecognized request argument supplied: functions"}}
"""

import re

PARAM_CODES = frozenset({"unknown_parameter", "unsupported_parameter", "unrecognized_parameter"})
_QUOTED = re.compile(r"\b(?:unknown|unsupported|unrecognized) (?:parameter|argument)s?:?\s*'([^'\s]{1,200})'", re.I)
_BARE = re.compile(r"\bunrecognized request arguments? supplied:\s*([\w.\[\]-]{1,200})", re.I)


def rejected_param(status: int, payload) -> str:
    """The dotted parameter path the upstream refused, or "" when the answer names none."""
    if status != 400 or not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    if not isinstance(error, dict):
        return ""
    param, code = error.get("param"), str(error.get("code") or "").lower()
    if code in PARAM_CODES and isinstance(param, str) and param.strip():
        return param.strip()[:200]
    message = str(error.get("message") or "")
    found = _QUOTED.search(message) or _BARE.search(message)
    return found.group(1) if found else ""
