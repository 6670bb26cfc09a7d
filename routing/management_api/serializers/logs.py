"""The request log, read-only: one row per client request (README "Audit: the request log")."""

from rest_framework import serializers

from routing.models import Outcome, RequestLog


class RequestLogSerializer(serializers.ModelSerializer):
    """One client request: who, which group and deployment(s), status, outcome, timings, usage, body changes."""

    outcome = serializers.ChoiceField(choices=Outcome.choices, allow_blank=True, read_only=True,
                                      help_text="How the request ended; blank on rows written before outcomes existed.")

    class Meta:
        model = RequestLog
        fields = ("id", "request_id", "created_at", "method", "endpoint", "path", "stream", "key_id", "key_name",
                  "group_name", "served_group", "deployment_id", "deployment_name", "provider", "status",
                  "upstream_status", "outcome", "latency_ms", "ttfb_ms", "overhead_ms", "input_tokens",
                  "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "policy_changes", "attempts",
                  "response_id", "upstream_request_id", "error_type", "error_message", "rejected_param",
                  "client_disconnected", "bytes_out")
        read_only_fields = fields
