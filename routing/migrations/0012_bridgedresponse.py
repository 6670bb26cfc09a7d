"""The gateway's own store of Responses objects answered through the Chat bridge."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0011_remove_deployment_supports_compact'),
    ]

    operations = [
        migrations.CreateModel(
            name='BridgedResponse',
            fields=[
                ('response_id', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('group_name', models.CharField(help_text='The group it was created in (who may read it).', max_length=200)),
                ('deployment_id', models.BigIntegerField(blank=True, null=True)),
                ('previous_response_id', models.CharField(blank=True, max_length=64)),
                ('response', models.TextField(help_text='The Response object, JSON.')),
                ('input_items', models.TextField(help_text="This turn's input items, JSON list.")),
                ('size', models.PositiveIntegerField(help_text='Bytes of response + input_items.')),
                ('created_at', models.DateTimeField(db_index=True)),
                ('expires_at', models.DateTimeField(db_index=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
    ]
