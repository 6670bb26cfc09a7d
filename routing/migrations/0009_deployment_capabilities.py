"""Deployment capabilities (routing/capabilities.py): which APIs the upstream speaks, tri-state
fields where blank takes the provider's default, plus the "collect stream usage" switch.

Schema only: 0008 fills them from `supports_compact` and 0009 removes that column (data and
schema changes in separate migrations: PostgreSQL refuses an ALTER TABLE in a transaction that
has just updated the table's rows, "pending trigger events").
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0008_requestlog_console_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='chat_reasoning_effort',
            field=models.BooleanField(blank=True, default=None, help_text='Blank: Azure, OpenAI: yes; OpenAI-compatible: no.', null=True, verbose_name='Chat accepts reasoning_effort'),
        ),
        migrations.AddField(
            model_name='deployment',
            name='chat_stream_usage',
            field=models.BooleanField(blank=True, default=None, help_text='Blank: OpenAI yes; Azure with the v1 API or api-version 2024-09-01 or later; compatible no.', null=True, verbose_name='Chat accepts stream_options.include_usage'),
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
        ]
