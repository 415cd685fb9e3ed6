"""The example shop's product."""

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The product page (a shared try-on picture links back to it)."""
        from django.urls import reverse

        return reverse("shop:product_detail", kwargs={"pk": self.pk})
