"""What stands between care_reading and monthly partitioning (issue 13, docs/scaling.md), on every database:

- the sender's identifier moves its uniqueness to a side table, `care_readingidentifier` (patient, identifier) ->
  reading, filled here from the readings that carry one. `reading_identifier_once` (a unique key without
  taken_at) goes: a partitioned table can only hold unique keys that include the partition key;
- `Alert.reading` loses its database foreign key: PostgreSQL can only reference a partitioned table through a
  unique key that includes the partition key, (id, taken_at), and Django has no composite foreign keys. The
  alert is opened in its reading's transaction and readings are never deleted.

Migration 0009 then partitions care_reading on PostgreSQL.
"""

import django.db.models.deletion
from django.db import migrations, models

# Plain SQL both databases run the same way. Identifiers were unique per patient until now, so nothing collides.
BACKFILL = """
INSERT INTO care_readingidentifier (patient_id, identifier, reading_id)
SELECT patient_id, identifier, id FROM care_reading WHERE identifier <> '' ORDER BY id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("care", "0007_reading_sync_fields_symptom_severity"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReadingIdentifier",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("identifier", models.CharField(max_length=255)),
                (
                    "patient",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="care.patient"),
                ),
                (
                    "reading",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="care.reading",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("patient", "identifier"), name="reading_identifier_once_per_patient"
                    )
                ],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name="reading",
            name="reading_identifier_once",
        ),
        migrations.AlterField(
            model_name="alert",
            name="reading",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                to="care.reading",
            ),
        ),
    ]
