"""ModelVersion.input_size: the side of the checkpoint's model input, read from the existing
versions' files once (here, in the migration, never in a request)."""

from django.db import migrations, models


def describe_input_sizes(apps, schema_editor) -> None:
    from training.checkpoints import read_description

    ModelVersion = apps.get_model("projects", "ModelVersion")
    for version in ModelVersion.objects.exclude(checkpoint="").filter(checkpoint_error=""):
        description, _ = read_description(version.checkpoint.path)
        if description is not None:
            version.input_size = description["input_size"]
            version.save(update_fields=["input_size"])


class Migration(migrations.Migration):
    dependencies = [("projects", "0006_project_licence")]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="input_size",
            field=models.PositiveIntegerField(
                blank=True, help_text="The side of the model's square input in pixels.",
                null=True),
        ),
        migrations.RunPython(describe_input_sizes, migrations.RunPython.noop),
    ]
