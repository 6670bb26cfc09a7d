"""JSON-typed serializer fields: a value of the wrong JSON type is refused instead of coerced (DRF's own fields
take `"12"` for an integer, `0` for a boolean, `0` for a string), so the API accepts exactly what its schema
describes."""

import math

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


STRICT = {serializers.CharField: StrictCharField, serializers.BooleanField: StrictBooleanField,
          serializers.IntegerField: StrictIntegerField, serializers.FloatField: StrictFloatField}


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose generated fields are the strict ones above."""

    serializer_field_mapping = {model_field: STRICT.get(field, field)
                                for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()}
    serializer_related_field = StrictPrimaryKeyRelatedField
