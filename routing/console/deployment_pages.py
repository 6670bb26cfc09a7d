"""Deployment pages: the Test action, clone, and "add a drop rule" for a parameter an upstream rejected.

The Test action calls `routing.forwarding.probe.probe_deployment` (async, on the server's event loop through
`async_to_sync`): the real provider, policy and client path, no failover, audited as key "admin-test".
"""

import orjson
from asgiref.sync import async_to_sync
from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from routing import selectors, services
from routing.admin.common import page_context
from routing.console import preview as previews
from routing.forwarding.probe import default_body, probe_deployment
from routing.models import Deployment, RequestLog
from routing.policy import compile_rule

MAX_PARAM_CHARS = 200


def _deployment(model_admin, request, object_id) -> Deployment:
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("No such deployment.")
    if not model_admin.has_change_permission(request, obj):
        raise PermissionDenied
    return obj


class ProbeForm(forms.Form):
    body = forms.CharField(required=False, max_length=64_000, strip=False,
                           widget=forms.Textarea(attrs={"rows": 4, "cols": 90, "spellcheck": "false"}),
                           help_text="Optional JSON body for POST /v1/responses; blank sends the default shown.")

    def clean_body(self) -> dict | None:
        text = self.cleaned_data["body"].strip()
        if not text:
            return None
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise forms.ValidationError("The body must be a JSON object.")
        return body


def _probe(dep: Deployment, body: dict | None):
    try:
        snap = selectors.deployment_snap(dep)
    except ValueError as exc:
        return None, str(exc)
    return async_to_sync(probe_deployment)(snap, body=body), ""


def test(model_admin, request, object_id):
    dep = _deployment(model_admin, request, object_id)
    form = ProbeForm(request.POST if request.method == "POST" else None)
    results = []
    if request.method == "POST" and form.is_valid():
        result, problem = _probe(dep, form.cleaned_data["body"])
        results.append({"deployment": dep, "result": result, "problem": problem})
    default = orjson.dumps(default_body(dep.group.name), option=orjson.OPT_INDENT_2).decode()
    return TemplateResponse(request, "console/deployment_test.html", page_context(
        model_admin, request, f"Test {dep}", dep, form=form, results=results, default_body=default))


def test_many(model_admin, request, deployments: list[Deployment]):
    """The changelist action: one probe per selected deployment, in turn."""
    results = []
    for dep in deployments:
        result, problem = _probe(dep, None)
        results.append({"deployment": dep, "result": result, "problem": problem})
    return TemplateResponse(request, "console/deployment_test.html", page_context(
        model_admin, request, "Test deployments", None, form=None, results=results))


def clone(model_admin, request, object_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    dep = _deployment(model_admin, request, object_id)
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    copy = services.deployment_clone(deployment=dep)
    messages.success(request, f"Created “{copy.name}”, disabled: check it, then enable it.")
    return HttpResponseRedirect(reverse("admin:routing_deployment_change", args=[copy.pk]))


def _param(request) -> str:
    value = (request.POST.get("param") or request.GET.get("param") or "").strip()
    if not value or len(value) > MAX_PARAM_CHARS or "\x00" in value:
        raise Http404("No such parameter.")
    try:
        compile_rule("drop", value)
    except ValueError:
        raise Http404("Not a parameter path.") from None
    return value


def _sample_body(group: str, param: str) -> dict:
    body: dict = {"model": group, "input": "ping"}
    node = body
    *parents, leaf = param.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = "example"
    return body


def drop_param(model_admin, request, object_id):
    """GET: preview the deployment's requests with and without `drop <param>`. POST: add the rule."""
    dep = _deployment(model_admin, request, object_id)
    param = _param(request)
    logged = (RequestLog.objects.filter(deployment_id=dep.pk, rejected_param=param)
              .order_by("-created_at").values_list("endpoint", flat=True).first())
    endpoint = logged if logged in previews.ENDPOINT_PATHS else "any"
    if request.method == "POST":
        policy = services.policy_add_drop_rule(deployment=dep, path=param, endpoint=endpoint)
        messages.success(request, f"Added “drop {param}” to policy “{policy.name}”, used by “{dep.name}”.")
        return HttpResponseRedirect(reverse("admin:routing_parampolicy_change", args=[policy.pk]))
    holder = dep.policy.name if dep.policy and not dep.policy.builtin else f"new policy for {dep.name}"
    rule = compile_rule("drop", param, endpoint=endpoint, source=holder)
    body = _sample_body(dep.group.name, param)
    raw = orjson.dumps(body)
    shown_endpoint = endpoint if endpoint != "any" else "responses"
    try:
        before = previews.preview(selectors.deployment_snap(dep), raw=raw, body=body, endpoint=shown_endpoint,
                                  stream=False)
        after = previews.preview(selectors.deployment_snap(dep, extra_rules=(rule,)), raw=raw, body=body,
                                 endpoint=shown_endpoint, stream=False)
    except ValueError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:routing_deployment_change", args=[dep.pk]))
    creates = dep.policy is None or dep.policy.builtin
    return TemplateResponse(request, "console/drop_param.html", page_context(
        model_admin, request, f"Drop “{param}” for {dep.name}", dep, param=param, endpoint=endpoint,
        before=before, after=after, creates_policy=creates, policy=dep.policy,
        sample=orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()))
