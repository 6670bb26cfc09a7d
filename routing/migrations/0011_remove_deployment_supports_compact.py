"""`supports_compact` is now the `speaks_compact` capability (filled by 0008)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0010_deployment_capabilities_data'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='deployment',
            name='supports_compact',
        ),
    ]
