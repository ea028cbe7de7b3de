"""Create the four role groups; arbsite.apps sets their permissions after every migrate."""

from django.db import migrations

from arbsite.roles import create_groups


def create_roles(apps, schema_editor):
    create_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("arbsite", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("markets", "0001_initial"),
        ("risk", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
