"""Create the demo catalogue (idempotent) and a local admin account."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand

from django_tryon.models import Garment

from ...artwork import dress, tee, trousers
from ...models import Product

CATALOGUE = [
    ("Red cotton tee", "A classic crew-neck T-shirt.", "99.00", [("top", tee, (196, 40, 48))]),
    ("Indigo trousers", "Straight-leg trousers.", "199.00", [("bottom", trousers, (38, 52, 110))]),
    ("Green summer dress", "A light one-piece dress.", "259.00", [("one_piece", dress, (46, 139, 87))]),
    (
        "Weekend outfit",
        "A yellow tee with grey trousers.",
        "279.00",
        [("top", tee, (230, 190, 40)), ("bottom", trousers, (110, 110, 118))],
    ),
]


class Command(BaseCommand):
    help = "Create the example shop's products with drawn flat-lay garments, and an admin/admin superuser."

    def handle(self, *args: Any, **opts: Any) -> None:
        for name, description, price, garments in CATALOGUE:
            product, created = Product.objects.get_or_create(
                name=name, defaults={"description": description, "price": price}
            )
            if created:
                for kind, draw, color in garments:
                    image = SimpleUploadedFile(f"{kind}.jpg", draw(color), content_type="image/jpeg")
                    Garment.objects.create(product=product, image=image, kind=kind)
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Created the local superuser admin / admin (change it outside this demo).")
        self.stdout.write(
            f"Catalogue: {Product.objects.count()} products, {Garment.objects.count()} garments."
        )
