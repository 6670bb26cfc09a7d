"""Database models: fields and tiny properties only (logic lives in services/selectors).

The hot path never touches these: `selectors.load_snapshot()` turns them into frozen
snapshots (routing/snapshots.py) that requests read from memory.
"""


from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from routing import capabilities, crypto
from routing.validators import (  # the upstream ones are also named here by migrations 0004 and 0007
    validate_cooldown, validate_cooldown_window, validate_rule_value, validate_timeout, validate_upstream_key,
    validate_upstream_url)


class Strategy(models.TextChoices):
    WEIGHTED = "weighted", "Weighted random"
    PRIORITY = "priority", "Priority order"
    LEAST_BUSY = "least_busy", "Least busy"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency"


class Provider(models.TextChoices):
    AZURE = "azure", "Azure OpenAI"
    OPENAI = "openai", "OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible (vLLM, …)"
    MOCK = "mock", "Built-in mock"


class ModelGroup(models.Model):
    name = models.CharField(max_length=200, unique=True, help_text="Public model name clients send, e.g. azure-gpt-5.5")
    description = models.CharField(max_length=500, blank=True)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.WEIGHTED)
    max_attempts = models.PositiveSmallIntegerField(
        default=3, help_text="Upstream calls per request, across deployments, before giving up "
        "(retries and failover happen only before the first byte reaches the client)."
    )
    retry_on_status = models.CharField(
        max_length=100, default="429,500,502,503,504",
        help_text="Upstream statuses that move on to the next attempt (connect errors and timeouts "
        "before the first byte always do).",
    )
    cooldown_failures = models.PositiveSmallIntegerField(
        default=3, help_text="Failures within the window that put a deployment in cooldown.")
    cooldown_window = models.FloatField(default=60.0, validators=[validate_cooldown_window],
                                        help_text="Seconds over which failures are counted.")
    cooldown_seconds = models.FloatField(
        default=30.0, validators=[validate_cooldown],
        help_text="How long a failing deployment is skipped before one probe request.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        statuses = [s.strip() for s in self.retry_on_status.split(",") if s.strip()]
        if not all(s.isdigit() and 400 <= int(s) <= 599 for s in statuses):
            raise ValidationError({"retry_on_status": "Comma-separated HTTP statuses between 400 and 599."})


class GroupFallback(models.Model):
    """When every deployment of `group` is unavailable, try `fallback` (lowest position first)."""

    group = models.ForeignKey(ModelGroup, on_delete=models.CASCADE, related_name="fallback_links")
    fallback = models.ForeignKey(ModelGroup, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["group", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["group", "fallback"], name="fallback_unique_pair")]

    def __str__(self) -> str:
        return f"{self.group} → {self.fallback}"

    def clean(self) -> None:
        if self.group_id and self.group_id == self.fallback_id:
            raise ValidationError({"fallback": "A group cannot fall back to itself."})


class ParamPolicy(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    extends = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
        help_text="Rules of this base policy apply first, then this policy's own rules.",
    )
    builtin = models.BooleanField(default=False, help_text="Shipped preset (seeded by a migration).")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "param policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        seen, node = {self.pk}, self.extends
        while node is not None:
            if node.pk in seen:
                raise ValidationError({"extends": "Policies cannot extend each other in a loop."})
            seen.add(node.pk)
            node = node.extends


class RuleAction(models.TextChoices):
    DROP = "drop", "Drop path"
    SET = "set", "Set value"
    DEFAULT = "default", "Default value (only if absent)"
    RENAME = "rename", "Rename path"
    REJECT = "reject", "Reject request if present"
    ALLOW_ONLY = "allow_only", "Allow only these top-level keys"


class RuleEndpoint(models.TextChoices):
    ANY = "any", "Any endpoint"
    RESPONSES = "responses", "/v1/responses"
    CHAT = "chat", "/v1/chat/completions"
    COMPACT = "compact", "/v1/responses/compact"


class RuleStream(models.TextChoices):
    ANY = "any", "Stream and non-stream"
    STREAM = "stream", "Streaming only"
    NON_STREAM = "non_stream", "Non-streaming only"


class PolicyRule(models.Model):
    policy = models.ForeignKey(ParamPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(default=0)
    action = models.CharField(max_length=20, choices=RuleAction.choices)
    path = models.CharField(
        max_length=300, blank=True,
        help_text="Dotted path, e.g. stream_options.include_usage. For allow_only: comma-separated top-level keys.",
    )
    value = models.JSONField(null=True, blank=True, validators=[validate_rule_value],
                             help_text="JSON value for set/default.")
    target = models.CharField(max_length=300, blank=True, help_text="New dotted path for rename.")
    endpoint = models.CharField(max_length=20, choices=RuleEndpoint.choices, default=RuleEndpoint.ANY)
    stream = models.CharField(max_length=20, choices=RuleStream.choices, default=RuleStream.ANY)
    message = models.CharField(max_length=300, blank=True, help_text="Error message for reject.")
    enabled = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self) -> str:
        return f"{self.action} {self.path}" + (f" → {self.target}" if self.target else "")

    def clean(self) -> None:
        if not self.path.strip():
            raise ValidationError({"path": "A path is required."})
        if self.action == RuleAction.RENAME and not self.target.strip():
            raise ValidationError({"target": "Rename needs a target path."})
        if self.action in (RuleAction.SET, RuleAction.DEFAULT) and self.value is None:
            raise ValidationError({"value": "Set/default need a JSON value (use null in quotes for a string)."})
        if self.action != RuleAction.ALLOW_ONLY and any(not p for p in self.path.split(".")):
            raise ValidationError({"path": "Empty segment in dotted path."})


def _timeout(default: float, help_text: str) -> models.FloatField:
    return models.FloatField(default=default, validators=[validate_timeout], help_text=help_text)


class Deployment(models.Model):
    group = models.ForeignKey(ModelGroup, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=200, help_text="Label for logs and the admin.")
    provider = models.CharField(max_length=30, choices=Provider.choices, default=Provider.AZURE)
    api_base = models.CharField(
        max_length=500, blank=True, validators=[validate_upstream_url],
        help_text="Azure: https://RESOURCE.openai.azure.com · OpenAI: https://api.openai.com/v1 · compatible: http://host:8000/v1",
    )
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="Azure deployment name or upstream model id; blank keeps the client's model."
    )
    api_version = models.CharField(
        max_length=50, blank=True, help_text="Azure only. Blank uses the v1 API (/openai/v1/...)."
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_env = models.CharField(
        max_length=200, blank=True, editable=False,
        help_text="The environment variable the key was imported from (import_routes, `os.environ/NAME`); "
        "export_routes writes it back as the reference. Cleared whenever the key is set any other way.")
    weight = models.PositiveIntegerField(default=1)
    priority = models.IntegerField(default=0, help_text="Lower is tried first by the priority strategy.")
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute limit.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute limit.")
    connect_timeout = _timeout(5.0, "Seconds to establish a connection.")
    first_byte_timeout = _timeout(600.0, "Seconds to wait for the response to start.")
    idle_timeout = _timeout(300.0, "Seconds allowed between stream events.")
    total_timeout = _timeout(1800.0, "Overall deadline for one upstream call.")
    # What the upstream speaks (routing/capabilities.py). Blank (None) takes the provider's default.
    speaks_responses = models.BooleanField(
        null=True, blank=True, default=None, verbose_name="Responses API",
        help_text="The upstream serves /responses. Blank: the provider's default (Azure, OpenAI: yes; "
        "OpenAI-compatible: no). Without it, /v1/responses is answered through the Chat bridge.")
    speaks_chat = models.BooleanField(
        null=True, blank=True, default=None, verbose_name="Chat Completions API",
        help_text="The upstream serves /chat/completions. Blank: yes.")
    speaks_compact = models.BooleanField(
        null=True, blank=True, default=None, verbose_name="Responses compact",
        help_text="The upstream serves /responses/compact. Blank: as the Responses API.")
    chat_reasoning_effort = models.BooleanField(null=True, blank=True, default=None,
                                                verbose_name="Chat accepts reasoning_effort",
                                                help_text="Blank: Azure, OpenAI: yes; OpenAI-compatible: no.")
    chat_stream_usage = models.BooleanField(
        null=True, blank=True, default=None, verbose_name="Chat accepts stream_options.include_usage",
        help_text="Blank: OpenAI yes; Azure with the v1 API or api-version 2024-09-01 or later; compatible no.")
    collect_stream_usage = models.BooleanField(
        default=False, verbose_name="Collect stream usage",
        help_text="Ask Chat Completions streams for their token usage (stream_options.include_usage) when "
        "the client did not, where the upstream accepts it; the extra usage chunk is removed from what the "
        "client sees, and the change is in the request log. Off: nothing is ever added.")
    policy = models.ForeignKey(ParamPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="deployments")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The upstream key is not versioned: a revert keeps the current key (and where it came from), and a
    # rotated-out key is not kept.
    history = HistoricalRecords(excluded_fields=["api_key_encrypted", "api_key_env", "updated_at"])

    class Meta:
        ordering = ["group", "priority", "id"]
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="deployment_unique_name_in_group")]

    def __str__(self) -> str:
        return f"{self.group.name} → {self.name}"

    @property
    def capabilities(self) -> frozenset[str]:
        """What the upstream speaks, provider defaults filled in (routing/capabilities.py)."""
        return capabilities.resolve(self.provider, self.api_version, responses=self.speaks_responses,
                                    chat=self.speaks_chat, compact=self.speaks_compact,
                                    reasoning_effort=self.chat_reasoning_effort, stream_usage=self.chat_stream_usage)

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, plaintext: str) -> None:
        self.api_key_encrypted = crypto.encrypt(plaintext) if plaintext else ""
        self.api_key_env = ""  # a key set here no longer comes from the variable it was imported from

    @property
    def api_key_hint(self) -> str:
        if not self.api_key_encrypted:
            return "—"
        try:
            return crypto.mask(self.api_key)
        except ValueError:
            return "(cannot decrypt: GATEWAY_ENCRYPTION_KEY changed?)"


class ApiKey(models.Model):
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Public part, shown for identification.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_groups = models.ManyToManyField(ModelGroup, blank=True, help_text="Empty means every group.")
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rpm = models.PositiveIntegerField(null=True, blank=True)
    tpm = models.PositiveIntegerField(null=True, blank=True)
    max_parallel = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["key_hash"])  # who issued, revoked, regenerated

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Outcome(models.TextChoices):
    """How a request ended, in one word an auditor can filter on."""

    COMPLETED = "completed", "Completed"
    UPSTREAM_ERROR = "upstream_error", "Upstream answered with an error"
    UPSTREAM_FAILED = "upstream_failed", "No usable upstream answer"
    BROKEN_MIDSTREAM = "broken_midstream", "Stream broke mid-way"
    CLIENT_DISCONNECTED = "client_disconnected", "Client disconnected"
    SHUTDOWN = "shutdown", "Cut by shutdown"
    REJECTED = "rejected", "Refused by the gateway"
    INTERNAL_ERROR = "internal_error", "Gateway error"


class RequestLog(models.Model):
    """One row per client request. Plain columns, no foreign keys: the audit trail
    records what things were called at the time and survives deletions."""

    request_id = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(db_index=True)
    method = models.CharField(max_length=10)
    endpoint = models.CharField(max_length=40, db_index=True)
    path = models.CharField(max_length=300)
    stream = models.BooleanField(default=False)
    key_id = models.BigIntegerField(null=True, blank=True)
    key_name = models.CharField(max_length=200, blank=True, db_index=True)
    group_name = models.CharField(max_length=200, blank=True, db_index=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    deployment_name = models.CharField(max_length=200, blank=True, db_index=True)
    provider = models.CharField(max_length=30, blank=True)
    status = models.PositiveSmallIntegerField(db_index=True)
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    ttfb_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    total_tokens = models.IntegerField(null=True, blank=True)
    cached_tokens = models.IntegerField(null=True, blank=True)
    reasoning_tokens = models.IntegerField(null=True, blank=True)
    served_group = models.CharField(
        max_length=200, blank=True, help_text="The fallback group that served it, when not the requested group.")
    policy_changes = models.JSONField(default=list, blank=True)
    attempts = models.JSONField(default=list, blank=True)
    response_id = models.CharField(max_length=200, blank=True, db_index=True)
    upstream_request_id = models.CharField(max_length=200, blank=True)
    error_type = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, db_index=True)
    rejected_param = models.CharField(
        max_length=200, blank=True, db_index=True,
        help_text="The body parameter the upstream refused (400 unknown/unsupported parameter), if it named one.")
    client_disconnected = models.BooleanField(default=False)
    bytes_out = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The log's "has error" filter and its count read only error rows.
            models.Index(fields=["created_at"], condition=models.Q(status__gte=400) | ~models.Q(error_type=""),
                         name="requestlog_errors_by_time"),
            # "Slowest first" in the log list, without sorting the whole table.
            models.Index(fields=["latency_ms"], name="requestlog_latency"),
            # Rejected parameters per deployment (routing.selectors.rejected_params): a handful of rows.
            models.Index(fields=["deployment_id", "rejected_param", "created_at"],
                         condition=~models.Q(rejected_param=""), name="requestlog_rejected_params"),
        ]

    def __str__(self) -> str:
        return self.request_id


class RequestLogQuarantine(models.Model):
    """A request-log row the database refused even on its own (routing/audit/store.py), kept
    as text with the reason, so ops can see it and nothing blocks the rows after it."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.CharField(max_length=40, blank=True, db_index=True)
    reason = models.TextField()
    raw = models.TextField(help_text="The row as it was offered to the database (Python literal, ASCII).")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "quarantined request-log row"

    def __str__(self) -> str:
        return self.request_id or f"quarantined row {self.pk}"


class ResponseAffinity(models.Model):
    """Which deployment created a Responses API object (id → deployment), so follow-up
    calls (GET/DELETE/cancel/input_items, previous_response_id) reach the same one."""

    response_id = models.CharField(max_length=200, primary_key=True)
    deployment_id = models.BigIntegerField()
    group_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)


class BridgedResponse(models.Model):
    """A Response the gateway made through the Chat bridge, as the JSON the client got: what serves GET
    and `previous_response_id` on chat-only upstreams; expires and is pruned (forwarding/bridge_store.py)."""

    response_id = models.CharField(max_length=64, primary_key=True)
    group_name = models.CharField(max_length=200, help_text="The group it was created in (who may read it).")
    deployment_id = models.BigIntegerField(null=True, blank=True)
    previous_response_id = models.CharField(max_length=64, blank=True)
    response = models.TextField(help_text="The Response object, JSON.")
    input_items = models.TextField(help_text="This turn's input items, JSON list.")
    size = models.PositiveIntegerField(help_text="Bytes of response + input_items.")
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.response_id


class RouteVersion(models.Model):
    """A single row whose counter is bumped on every route/key change; each gateway
    process polls it and reloads its in-memory tables when it moves."""

    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class GatewaySettings(models.Model):
    """Settings ops change in the admin (one row, pk=1; read by `selectors.gateway_settings()`)."""

    master_key_enabled = models.BooleanField(
        default=True, verbose_name="master key accepted",
        help_text="GATEWAY_MASTER_KEY is the bootstrap client key (every group). Retire it once real API keys "
        "exist: clients presenting it then get 401. Re-enable it here if you need it back.")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = verbose_name_plural = "gateway settings"

    def __str__(self) -> str:
        return "Gateway settings"


from routing.management_api.models import ManagementToken  # noqa: E402, F401  (the /api/ tokens, with their code)
