"""Check garment images against the provider's rules and the flat-lay rules; say how to fix each."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...models import Garment
from ...preflight import check_garment


class Command(BaseCommand):
    help = "Report garment images the provider would refuse or that break the flat-lay rules, with fixes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--product", type=int, action="append", help="Only this product (repeatable).")
        parser.add_argument("--include-inactive", action="store_true", help="Also check inactive garments.")

    def handle(self, *args: Any, **opts: Any) -> None:
        garments = Garment.objects.select_related("product").order_by("product", "pk")
        if not opts["include_inactive"]:
            garments = garments.filter(is_active=True)
        if opts["product"]:
            garments = garments.filter(product__in=opts["product"])
        bad = 0
        for garment in garments:
            findings = check_garment(garment)
            if not findings:
                self.stdout.write(f"ok    garment {garment.pk} ({garment})")
                continue
            bad += 1
            for finding in findings:
                self.stdout.write(
                    f"FIX   garment {garment.pk} ({garment}): {finding.problem} → {finding.fix}"
                )
        total = garments.count()
        self.stdout.write(f"{total - bad} of {total} garments ready for try-on.")
        if bad:
            raise CommandError(f"{bad} garment(s) need attention.", returncode=1)
