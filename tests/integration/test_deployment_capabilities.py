"""Deployment capabilities in the database and the admin (models.Deployment, forms.DeploymentForm, selectors),
and the migration that folds `supports_compact` into them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from routing.models import Deployment, ModelGroup
from routing.selectors import load_snapshot

BEFORE, AFTER = ("routing", "0008_requestlog_console_indexes"), ("routing", "0011_remove_deployment_supports_compact")


@pytest.fixture
def group(db) -> ModelGroup:
    return ModelGroup.objects.create(name="qwen")


def post(group: ModelGroup, **fields) -> dict:
    data = {"group": group.pk, "name": "vllm", "provider": "openai_compatible", "api_base": "http://vllm:8000/v1",
            "upstream_model": "qwen3", "api_version": "", "new_api_key": "", "weight": 1, "priority": 0, "rpm": "",
            "tpm": "", "connect_timeout": 5, "first_byte_timeout": 600, "idle_timeout": 300, "total_timeout": 1800,
            "policy": "", "enabled": "on", **{name: "unknown" for name in (
                "speaks_responses", "speaks_chat", "speaks_compact", "chat_reasoning_effort", "chat_stream_usage")}}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_edits_capabilities_with_provider_defaults(admin_client, group):
    add = reverse("admin:routing_deployment_add")
    page = admin_client.get(add).content.decode()
    assert "Provider default" in page and "Collect stream usage" in page
    assert admin_client.post(add, post(group)).status_code == 302
    dep = Deployment.objects.get(name="vllm")
    assert (dep.speaks_responses, dep.collect_stream_usage) == (None, False)
    assert dep.capabilities == {"chat"}  # an OpenAI-compatible server: chat only unless ticked

    change = reverse("admin:routing_deployment_change", args=[dep.pk])
    response = admin_client.post(change, post(group, speaks_responses="true", chat_stream_usage="true",
                                               collect_stream_usage="on"))
    assert response.status_code == 302, response.content
    dep.refresh_from_db()
    assert dep.capabilities == {"responses", "chat", "compact", "chat.stream_usage"}
    snap = load_snapshot().deployments[dep.pk]
    assert snap.apis == dep.capabilities and snap.collect_stream_usage is True
    assert load_snapshot().groups["qwen"].common_apis == dep.capabilities


def test_group_common_apis_are_what_every_deployment_speaks(group):
    Deployment.objects.create(group=group, name="a", provider="openai_compatible", api_base="http://a/v1")
    Deployment.objects.create(group=group, name="b", provider="azure", api_base="https://r.openai.azure.com",
                              upstream_model="m")
    assert load_snapshot().groups["qwen"].common_apis == {"chat"}


def _sequences() -> dict[str, int]:
    if connection.vendor != "sqlite":
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, seq FROM sqlite_sequence")
        return dict(cursor.fetchall())


def _restore(sequences: dict[str, int]) -> None:
    """SQLite rebuilds a table to change a column, and the rebuilt table's ids start again from its rows:
    later tests would get deployment ids the running gateway still has health records for."""
    with connection.cursor() as cursor:
        for name, seq in sequences.items():
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s AND seq < %s", [seq, name, seq])
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) SELECT %s, %s WHERE NOT EXISTS "
                           "(SELECT 1 FROM sqlite_sequence WHERE name = %s)", [name, seq, name])


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_what_each_deployment_did():
    executor = MigrationExecutor(connection)
    sequences = _sequences()
    try:
        executor.migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps
        group = old.get_model("routing", "ModelGroup").objects.create(name="g")
        Old = old.get_model("routing", "Deployment")
        for name, provider, compact in (("az", "azure", True), ("az-nc", "azure", False), ("vllm", "openai_compatible",
                                                                                            True)):
            Old.objects.create(group=group, name=name, provider=provider, supports_compact=compact)
        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
        new = executor.loader.project_state([AFTER]).apps.get_model("routing", "Deployment")
        rows = {d.name: (d.speaks_responses, d.speaks_compact) for d in new.objects.all()}
        # vLLM was sent /v1/responses before: it keeps that until ops untick it
        assert rows == {"az": (None, None), "az-nc": (None, False), "vllm": (True, None)}
        executor = MigrationExecutor(connection)
        executor.migrate([BEFORE])  # and back
        back = executor.loader.project_state([BEFORE]).apps.get_model("routing", "Deployment")
        assert {d.name: d.supports_compact for d in back.objects.all()} == {"az": True, "az-nc": False, "vllm": True}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        _restore(sequences)
