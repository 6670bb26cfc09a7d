"""Deployment capabilities (routing/capabilities.py): which APIs the upstream speaks, tri-state
fields where blank takes the provider's default, plus the "collect stream usage" switch.

`supports_compact` becomes `speaks_compact`: a deployment that could not serve compact keeps
False; one that could takes the default (which is "as the Responses API").

Existing OpenAI-compatible deployments keep what they did before this migration: /v1/responses
went to their own /responses, so they are marked as speaking it (new ones default to chat only
and are bridged). Untick "Responses API" on those that only speak Chat Completions.
"""

from django.db import migrations, models


def forwards(apps, schema_editor):
    Deployment = apps.get_model("routing", "Deployment")
    Deployment.objects.filter(supports_compact=False).update(speaks_compact=False)
    Deployment.objects.filter(provider="openai_compatible").update(speaks_responses=True)


def backwards(apps, schema_editor):
    Deployment = apps.get_model("routing", "Deployment")
    # Compact was possible where it was ticked, or left blank on a deployment speaking the Responses API.
    Deployment.objects.update(supports_compact=False)
    speaks_responses = models.Q(speaks_responses=True) | (models.Q(speaks_responses__isnull=True)
                                                          & ~models.Q(provider="openai_compatible"))
    Deployment.objects.filter(models.Q(speaks_compact=True) | (models.Q(speaks_compact__isnull=True)
                                                               & speaks_responses)).update(supports_compact=True)


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0006_requestlog_quarantine'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='chat_reasoning_effort',
            field=models.BooleanField(blank=True, default=None, help_text='Blank: Azure, OpenAI: yes; OpenAI-compatible: no. The bridge sends a Responses reasoning.effort there only with it.', null=True, verbose_name='Chat accepts reasoning_effort'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='chat_stream_usage',
            field=models.BooleanField(blank=True, default=None, help_text='Blank: OpenAI yes; Azure with the v1 API or api-version 2024-09-01 or later; OpenAI-compatible no.', null=True, verbose_name='Chat accepts stream_options.include_usage'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='collect_stream_usage',
            field=models.BooleanField(default=False, help_text='Ask Chat Completions streams for their token usage (stream_options.include_usage) when the client did not, where the upstream accepts it; the extra usage chunk is removed from what the client sees, and the change is in the request log. Off: nothing is ever added.', verbose_name='Collect stream usage'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='speaks_chat',
            field=models.BooleanField(blank=True, default=None, help_text='The upstream serves /chat/completions. Blank: yes.', null=True, verbose_name='Chat Completions API'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='speaks_compact',
            field=models.BooleanField(blank=True, default=None, help_text='The upstream serves /responses/compact. Blank: as the Responses API.', null=True, verbose_name='Responses compact'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='speaks_responses',
            field=models.BooleanField(blank=True, default=None, help_text="The upstream serves /responses. Blank: the provider's default (Azure, OpenAI: yes; OpenAI-compatible: no). Without it, /v1/responses is answered through the Chat bridge.", null=True, verbose_name='Responses API'),
        ),
            migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name='deployment',
            name='supports_compact',
        ),
    ]
