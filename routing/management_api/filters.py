"""Query filters (django-filter) for the /api/ lists. Names follow the resource's fields; every value is
bounded by its form field (integers with limits, no NUL in text), so a bad value is a 400, never a query error."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from routing.models import ApiKey, Deployment, GroupFallback, ModelGroup, Outcome, ParamPolicy, RequestLog

ID_MAX = 2**63 - 1


class IntFilter(django_filters.NumberFilter):
    """An integer within [min_value, max_value] (NumberFilter would take decimals and truncate them); the schema
    says so too."""

    field_class = forms.IntegerField

    def __init__(self, *args, min_value: int, max_value: int, **kwargs):
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)
        schema = {"type": "integer", "minimum": min_value, "maximum": max_value}
        if kwargs.get("help_text"):
            schema["description"] = kwargs["help_text"]
        extend_schema_field(schema)(self)


class BoolField(forms.Field):
    """`true` or `false` (a NullBooleanField would take anything else as "no filter")."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value not in ("true", "false"):
            raise forms.ValidationError("Enter true or false.", code="invalid")
        return value == "true"


@extend_schema_field({"type": "boolean"})
class BoolFilter(django_filters.Filter):
    field_class = BoolField


def _id(field_name: str, help_text: str) -> IntFilter:
    return IntFilter(field_name=field_name, min_value=1, max_value=ID_MAX, help_text=help_text)


class ModelGroupFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(max_length=200, help_text="Exact name.")
    name_contains = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=200)
    enabled = BoolFilter()

    class Meta:
        model = ModelGroup
        fields = ("name", "name_contains", "enabled", "strategy")


class DeploymentFilter(django_filters.FilterSet):
    group = _id("group_id", "Model group id.")
    group_name = django_filters.CharFilter(field_name="group__name", max_length=200, help_text="Model group name.")
    name = django_filters.CharFilter(max_length=200, help_text="Exact name.")
    policy = _id("policy_id", "Param policy id.")
    enabled = BoolFilter()

    class Meta:
        model = Deployment
        fields = ("group", "group_name", "name", "provider", "enabled", "policy")


class GroupFallbackFilter(django_filters.FilterSet):
    group = _id("group_id", "The group that falls back.")
    fallback = _id("fallback_id", "The group fallen back to.")

    class Meta:
        model = GroupFallback
        fields = ("group", "fallback")


class ParamPolicyFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(max_length=200, help_text="Exact name.")
    extends = _id("extends_id", "Base policy id.")
    builtin = BoolFilter()

    class Meta:
        model = ParamPolicy
        fields = ("name", "builtin", "extends")


class ApiKeyFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(max_length=200, help_text="Exact name.")
    prefix = django_filters.CharFilter(max_length=16, help_text="The key's public prefix (sk-gw-<prefix>-…).")
    allowed_group = _id("allowed_groups", "Keys limited to this group id.")
    is_active = BoolFilter()

    class Meta:
        model = ApiKey
        fields = ("name", "prefix", "is_active", "allowed_group")


class RequestLogFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte",
                                                     help_text="From this time on (ISO 8601, inclusive).")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt",
                                                      help_text="Before this time (ISO 8601, exclusive).")
    key = django_filters.CharFilter(field_name="key_name", max_length=200, help_text="Client key name (exact).")
    key_id = _id("key_id", "Client key id.")
    group = django_filters.CharFilter(field_name="group_name", max_length=200, help_text="Model group asked for.")
    deployment = django_filters.CharFilter(field_name="deployment_name", max_length=200,
                                           help_text="Deployment name (the one that answered or was tried last).")
    deployment_id = _id("deployment_id", "Deployment id.")
    status = IntFilter(min_value=0, max_value=999, help_text="HTTP status the client got.")
    status_min = IntFilter(field_name="status", lookup_expr="gte", min_value=0, max_value=999)
    status_max = IntFilter(field_name="status", lookup_expr="lte", min_value=0, max_value=999)
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    endpoint = django_filters.CharFilter(max_length=40, help_text="e.g. responses, chat, compact.")
    response_id = django_filters.CharFilter(max_length=200)
    stream = BoolFilter()

    class Meta:
        model = RequestLog
        fields = ("created_after", "created_before", "key", "key_id", "group", "deployment", "deployment_id", "status",
                  "status_min", "status_max", "outcome", "endpoint", "stream", "response_id")
