"""Policy preview: what the upstream would receive for a pasted request body, computed by the engine live
traffic uses (`routing.forwarding.upstream_request.build`), with credentials masked."""

from dataclasses import dataclass

import orjson
from django import forms

from routing.config.snapshots import DeploymentSnap
from routing.errors import GatewayError
from routing.forwarding import upstream_request
from routing.forwarding.upstream_request import Target
from routing.models import Deployment

MAX_BODY_CHARS = 1_000_000
ENDPOINT_PATHS = {"responses": "responses", "chat": "chat/completions", "compact": "responses/compact"}
EXAMPLE_BODY = '{\n  "model": "MODEL",\n  "input": "Hello",\n  "stream": true,\n  "stream_options": {"include_usage": true}\n}'


class PreviewForm(forms.Form):
    deployment = forms.ModelChoiceField(queryset=Deployment.objects.select_related("group").order_by(
        "group__name", "name"), help_text="Its URL, credentials and model rewrite are used.")
    endpoint = forms.ChoiceField(choices=[("responses", "/v1/responses"), ("chat", "/v1/chat/completions"),
                                          ("compact", "/v1/responses/compact")])
    stream = forms.ChoiceField(choices=[("body", "as the body says"), ("stream", "streaming"),
                                        ("non_stream", "non-streaming")], initial="body",
                               help_text="Rules limited to stream or non-stream requests apply accordingly.")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "spellcheck": "false"}),
                           max_length=MAX_BODY_CHARS, initial=EXAMPLE_BODY, strip=False,
                           help_text="A JSON request body, as a client would send it.")

    def clean_body(self) -> dict:
        text = self.cleaned_data["body"]
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("The body must be a JSON object.")
        self.cleaned_data["raw"] = text.encode()
        return parsed

    def stream_flag(self) -> bool:
        mode, body = self.cleaned_data["stream"], self.cleaned_data["body"]
        return body.get("stream") is True if mode == "body" else mode == "stream"


@dataclass(frozen=True, slots=True)
class Preview:
    method: str
    url: str
    headers: dict[str, str]  # masked
    body: str  # pretty JSON of what is sent ("" without a body)
    body_unchanged: bool  # the client's own bytes are forwarded
    changes: list[dict]
    rejected: GatewayError | None = None


def preview(dep: DeploymentSnap, *, raw: bytes, body: dict, endpoint: str, stream: bool) -> Preview:
    target = Target("POST", ENDPOINT_PATHS[endpoint], endpoint, "", raw, body, stream)
    try:
        request = upstream_request.build(dep, target, {})
    except GatewayError as exc:  # a reject rule: the client would get this 400, the upstream nothing
        return Preview("POST", "", {}, "", False, [], rejected=exc)
    content = request.content or b""
    shown = orjson.dumps(orjson.loads(content), option=orjson.OPT_INDENT_2).decode() if content else ""
    return Preview(request.method, request.url, request.masked_headers(), shown, content == raw, request.changes)
