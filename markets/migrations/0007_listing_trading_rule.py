"""A listing's minimum order size and why the venue halts it, as the trading-rule sync reads them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("markets", "0006_exchangecredential_last_nonce"),
    ]

    operations = [
        migrations.AddField(
            model_name="listing",
            name="min_size",
            field=models.DecimalField(
                decimal_places=10,
                default=0,
                help_text="The smallest order size the venue accepts, in base; 0 for none.",
                max_digits=20,
            ),
        ),
        migrations.AddField(
            model_name="listing",
            name="halted_reason",
            field=models.CharField(
                blank=True,
                help_text="Why the venue does not trade it now, as the last sync of its trading "
                "rules read it (e.g. Binance status BREAK); empty when it trades.",
                max_length=100,
            ),
        ),
        migrations.AddConstraint(
            model_name="listing",
            constraint=models.CheckConstraint(
                condition=models.Q(min_size__gte=0), name="min_size_not_negative"
            ),
        ),
    ]
