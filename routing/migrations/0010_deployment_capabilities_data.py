"""Fill the deployment capabilities from what each deployment did before.

`supports_compact` becomes `speaks_compact`: a deployment that could not serve compact keeps
False; one that could takes the default (which is "as the Responses API").

Existing OpenAI-compatible deployments keep what they did before: /v1/responses went to their
own /responses, so they are marked as speaking it (new ones default to chat only and are
bridged). Untick "Responses API" on those that only speak Chat Completions.
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
        ('routing', '0009_deployment_capabilities'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
