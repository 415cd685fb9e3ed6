from django.urls import path

from . import views

app_name = "shop"
urlpatterns = [
    path("", views.product_list, name="product_list"),
    path("p/<int:pk>/", views.product_detail, name="product_detail"),
    path("my-tryons/", views.my_tryons, name="my_tryons"),
    path("try/<uuid:public_id>/", views.tryon_detail, name="tryon_detail"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path(
        "cart/checkout/", views.checkout, name="checkout"
    ),  # a demo order: django_tryon.funnel.record_purchase  # TRYON["ADD_TO_CART_URL"]
]
