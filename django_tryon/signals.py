"""Domain signals, sent after the state change is committed (with ``send_robust``)."""

from django.dispatch import Signal

#: Sent when the provider accepted a try-on. provides args: tryon
tryon_submitted = Signal()

#: Sent when the result is stored and the try-on succeeded. provides args: tryon
tryon_succeeded = Signal()

#: Sent when a try-on failed for good. provides args: tryon, code, message
tryon_failed = Signal()

#: Sent when a try-on was canceled (by request, or at the provider). provides args: tryon
tryon_canceled = Signal()

#: Funnel analytics: sent by ``django_tryon.funnel.record_purchase`` when a purchase follows a try-on of
#: the product in the same browser session. provides args: product, quantity
tryon_purchased = Signal()
