"""Policy pages: the preview, "copy to edit", and restoring a policy with its rules from history."""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from routing import selectors, services
from routing.admin.common import page_context
from routing.console.preview import PreviewForm
from routing.console.preview import preview as compute_preview
from routing.models import Deployment, ParamPolicy, PolicyRule


def _policy(model_admin, request, object_id, *, change: bool) -> ParamPolicy:
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("No such policy.")
    allowed = model_admin.has_change_permission(request, obj) if change else model_admin.has_view_permission(request, obj)
    if not allowed:
        raise PermissionDenied
    return obj


def preview(model_admin, request):
    """Paste a body, choose a deployment, endpoint and stream mode: see what the upstream would receive.
    With ?policy=ID the deployment is previewed with that policy instead of its own (to try a policy before
    switching a deployment to it)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    policy = None
    policy_id = request.GET.get("policy", "")
    if policy_id:
        policy = ParamPolicy.objects.filter(pk=policy_id).first() if policy_id.isdigit() else None
        if policy is None:
            raise Http404("No such policy.")
    initial = {}
    deployment_id = request.GET.get("deployment", "")
    if deployment_id.isdigit():
        initial["deployment"] = deployment_id
    elif policy is not None:
        initial["deployment"] = Deployment.objects.filter(policy=policy).values_list("pk", flat=True).first()
    form = PreviewForm(request.POST if request.method == "POST" else None, initial=initial)
    result, problem = None, ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            snap = selectors.deployment_snap(data["deployment"], policy=policy)
        except ValueError as exc:
            problem = str(exc)
        else:
            result = compute_preview(snap, raw=data["raw"], body=data["body"], endpoint=data["endpoint"],
                                     stream=form.stream_flag())
    title = f"Preview policy “{policy}”" if policy else "Preview what an upstream receives"
    return TemplateResponse(request, "console/policy_preview.html", page_context(
        model_admin, request, title, policy, form=form, result=result, problem=problem, policy=policy))


def copy(model_admin, request, object_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    source = _policy(model_admin, request, object_id, change=False)
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    created = services.policy_copy(policy=source)
    messages.success(request, f"Copied “{source.name}” to “{created.name}”: edit it, then choose it on deployments.")
    return HttpResponseRedirect(reverse("admin:routing_parampolicy_change", args=[created.pk]))


def restore(model_admin, request, object_id):
    """Put the policy and its rules back as they were right after a change in its history."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    policy = _policy(model_admin, request, object_id, change=True)
    when = parse_datetime((request.POST.get("at") or "")[:40].replace("\x00", ""))
    if when is None:
        raise Http404("No such point in the history.")
    services.policy_restore(policy=policy, as_of=when)
    messages.success(request, f"Restored “{policy.name}” and its rules as they were at {when:%Y-%m-%d %H:%M:%S}.")
    return HttpResponseRedirect(reverse("admin:routing_parampolicy_change", args=[policy.pk]))


def rule_history(object_id, limit: int = 200) -> list[dict]:
    """The policy's rule changes, newest first, each with what changed (before → after)."""
    if not str(object_id).isdigit():
        return []
    records = list(PolicyRule.history.filter(policy_id=int(object_id)).select_related("history_user")
                   .order_by("-history_date", "-history_id")[:limit])
    rows = []
    for record in records:
        previous = record.prev_record
        delta = record.diff_against(previous).changes if previous is not None else []
        rows.append({"record": record, "changes": delta})
    return rows
