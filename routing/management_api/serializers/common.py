"""Serializers the schema shares: the error shape of every /api/ failure (routing/management_api/errors.py)."""

from rest_framework import serializers

from routing.management_api import history
from routing.management_api.serializers.fields import StrictModelSerializer
from routing.management_api.validation import run_form


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField(help_text="invalid_request_error, authentication_error, permission_error or "
                                 "server_error.")
    param = serializers.CharField(allow_null=True, help_text="The first field in error, if any.")
    code = serializers.CharField(help_text="e.g. invalid, required, not_found, permission_denied, conflict.")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Every field error: {field path: [messages]}; {} for other errors.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class FormValidated(StrictModelSerializer):
    """A ModelSerializer whose `validate()` runs the admin's form (routing/management_api/validation.py), keeping
    the bound form for `create`/`update`. Subclasses set `form_class` (and `renamed`)."""

    form_class = None
    renamed: dict[str, str] = {}

    def form_data(self, attrs: dict) -> dict:
        return attrs

    def validate(self, attrs):
        instance = self.instance if self.instance is not None else self.Meta.model()
        self.form = run_form(self.form_class, instance=instance, data=self.form_data(attrs), renamed=self.renamed)
        history.attribute(self.form.instance, self.context["request"])
        return attrs
