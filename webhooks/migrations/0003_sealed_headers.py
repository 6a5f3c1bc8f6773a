"""Extra webhook headers are encrypted at rest; secrets sealed with the old constant key are resealed.

Until this migration the headers (often `Authorization: Bearer ...` for the receiver) were stored
as plain JSON, and SECRET_KEY defaulted to a constant in the code, from which the key that
encrypts secrets was derived: anyone with a dump and the code could read them. Both are now sealed
with the current key (webhooks/crypto.py).
"""

import json

from django.db import migrations, models

from webhooks import crypto


def seal(apps, schema_editor):
    from webhooks.services import reseal_secrets

    Webhook = apps.get_model("webhooks", "Webhook")
    for webhook in Webhook.objects.exclude(headers={}).iterator():
        sealed = crypto.encrypt(json.dumps(webhook.headers, sort_keys=True))
        Webhook.objects.filter(pk=webhook.pk).update(sealed_headers=sealed)
    reseal_secrets(Webhook)


def unseal(apps, schema_editor):
    Webhook = apps.get_model("webhooks", "Webhook")
    for webhook in Webhook.objects.exclude(sealed_headers="").iterator():
        Webhook.objects.filter(pk=webhook.pk).update(headers=json.loads(crypto.decrypt(webhook.sealed_headers)))


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_delivery_claimed_at")]

    operations = [
        migrations.AddField(
            model_name="webhook", name="sealed_headers", field=models.TextField(blank=True, default="")
        ),
        migrations.RunPython(seal, unseal, elidable=False),
        migrations.RemoveField(model_name="webhook", name="headers"),
    ]
