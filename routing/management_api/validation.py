"""API writes are validated by the admin's own ModelForms (routing/forms.py, or a plain ModelForm over the model's
`clean()` and field validators where the admin has no form of its own), so the API and the admin share one
set of rules. The serializer checks types and bounds first (and documents them in the schema); then
`run_form` binds the form the way the admin's POST would and turns its errors into a DRF ValidationError.
"""

import json

from django import forms
from django.forms.models import model_to_dict
from rest_framework import serializers


def _form_value(field: forms.Field, value):
    """A Python value (from a serializer's validated data or the instance) as the admin's form would post it."""
    if isinstance(field, forms.ModelMultipleChoiceField):
        return [getattr(item, "pk", item) for item in value or ()]
    if isinstance(field, forms.ModelChoiceField):
        return "" if value is None else getattr(value, "pk", value)
    if isinstance(field, forms.JSONField):
        return "" if value is None else json.dumps(value)
    return value


def run_form(form_class: type[forms.ModelForm], *, instance, data: dict, renamed: dict[str, str] | None = None):
    """Bind `form_class` to `instance` with the instance's current values (a new instance: the model's defaults)
    overlaid by `data`, as a full admin form post would be. Returns the valid form (its `instance` is updated,
    not saved); raises ValidationError with the form's errors under the serializer's field names (`renamed`:
    form field → serializer field, e.g. new_api_key → api_key)."""
    renamed = renamed or {}
    current = model_to_dict(instance)
    posted = {}
    for name, field in form_class.base_fields.items():
        source = renamed.get(name, name)
        value = data[source] if source in data else current.get(name, field.initial)
        posted[name] = _form_value(field, value)
    form = form_class(data=posted, instance=instance)
    if not form.is_valid():
        errors = {}
        for name, messages in form.errors.items():
            key = "non_field_errors" if name == "__all__" else renamed.get(name, name)
            errors.setdefault(key, []).extend(messages)
        raise serializers.ValidationError(errors)
    return form
