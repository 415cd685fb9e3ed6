from django.contrib import admin

from django_tryon.admin import GarmentInline

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price")
    inlines = (GarmentInline,)  # the one line a shop adds to offer try-on for a product
