"""Describe the checkpoints of existing model versions in their new columns, reading each file
once (here, in the migration, never in a request)."""

from django.db import migrations

FIELDS = ("task", "class_names", "checkpoint_format", "parameters")


def describe_existing(apps, schema_editor) -> None:
    from training.checkpoints import read_description

    ModelVersion = apps.get_model("projects", "ModelVersion")
    for version in ModelVersion.objects.exclude(checkpoint=""):
        description, error = read_description(version.checkpoint.path)
        for name in FIELDS:
            if description is not None:
                setattr(version, name, description[name])
        version.checkpoint_error = error
        version.save(update_fields=[*FIELDS, "checkpoint_error"])


class Migration(migrations.Migration):
    dependencies = [("projects", "0002_checkpoint_description")]

    operations = [migrations.RunPython(describe_existing, migrations.RunPython.noop)]
