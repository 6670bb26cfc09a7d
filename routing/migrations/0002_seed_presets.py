from django.db import migrations


def seed(apps, schema_editor):
    ParamPolicy = apps.get_model("routing", "ParamPolicy")
    PolicyRule = apps.get_model("routing", "PolicyRule")
    RouteVersion = apps.get_model("routing", "RouteVersion")
    policy, created = ParamPolicy.objects.get_or_create(
        name="azure-responses",
        defaults={
            "builtin": True,
            "description": "Azure OpenAI Responses API: drop stream_options, which Azure rejects with 400 "
            "unknown_parameter (usage arrives in response.completed anyway).",
        },
    )
    if created:
        PolicyRule.objects.create(policy=policy, position=0, action="drop", path="stream_options", endpoint="responses")
    RouteVersion.objects.get_or_create(pk=1, defaults={"version": 1})


class Migration(migrations.Migration):
    dependencies = [("routing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
