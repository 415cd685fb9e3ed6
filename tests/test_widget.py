"""The ``{% tryon_button %}`` template tag: when it shows, what it renders once per page, its languages."""

from __future__ import annotations

import gettext
import json
import re
from pathlib import Path

import pytest
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from django.utils import translation

from django_tryon.templatetags.tryon_tags import api_root

from .conftest import make_garment

pytestmark = pytest.mark.django_db
LOCALE = Path(__file__).resolve().parent.parent / "django_tryon" / "locale" / "zh_Hans" / "LC_MESSAGES"


def render(source: str, request=None, **context) -> str:
    template = Template("{% load tryon_tags %}" + source)
    if request is None:
        return template.render(Context(context))
    return template.render(RequestContext(request, context))


def test_nothing_without_an_active_garment(product):
    assert render("{% tryon_button product %}", product=product).strip() == ""
    make_garment(product, active=False)
    assert render("{% tryon_button product %}", product=product).strip() == ""
    assert render("{% tryon_button None %}").strip() == ""


def test_button_and_dialog_with_an_active_garment(product):
    make_garment(product)
    request = RequestFactory().get("/p/1/")
    html = render("{% tryon_button product %}", request, product=product)
    button = re.search(r"<button type=\"button\" class=\"tryon-button\"[^>]*>([^<]+)</button>", html)
    assert button and button.group(1) == "Try it on"
    assert f'data-tryon-product="{product.pk}"' in button.group(0) and 'aria-controls="tryon-dialog"' in button.group(0)
    assert '<dialog class="tryon-dialog" id="tryon-dialog" aria-labelledby="tryon-title"' in html
    assert 'data-tryon-api="/tryon/api/"' in html and api_root() == "/tryon/api/"
    assert 'type="file" accept="image/*" capture="user"' in html
    assert 'data-tryon="consent"' in html and "disabled" in html  # the upload waits for consent
    assert 'name="csrfmiddlewaretoken"' in html
    assert request.META.get("CSRF_COOKIE_NEEDS_UPDATE")  # so the response sets the csrftoken cookie
    for text in ("Front-facing, full body, alone, good light", "No other people", "Nothing in your hands, no bag",
                 "Not too dark or blurry", "No half-body, sitting or side-on photos"):
        assert text in html
    assert html.count("<svg") >= 6  # the pictograms are inline SVG, no photos


def test_assets_and_dialog_once_per_page(product):
    from tests.testapp.models import Product

    make_garment(product)
    other = Product.objects.create(name="Blue tee")
    make_garment(other, color=(30, 30, 160))
    card = Template("{% load tryon_tags %}<div class=card>{% tryon_button item %}</div>")
    html = render(
        "<head>{% tryon_assets %}</head>{% for item in products %}{% include card %}{% endfor %}{% tryon_button extra %}",
        products=[product, other], card=card, extra=product,
    )
    assert html.count('class="tryon-button"') == 3
    assert html.count("django_tryon/tryon.js") == 1 and html.count("django_tryon/tryon.css") == 1
    assert html.count("/tryon/jsi18n/") == 1
    assert html.index("/tryon/jsi18n/") < html.index("django_tryon/tryon.js")  # the catalog loads first
    assert html.count("<dialog") == 1 and html.count('id="tryon-figure"') == 1
    # A second page (a new render) gets its own assets and dialog.
    again = render("{% tryon_button product %}", product=product)
    assert again.count("django_tryon/tryon.js") == 1 and again.count("<dialog") == 1


def test_prefetched_garments_cost_no_query(product, django_assert_num_queries):
    from tests.testapp.models import Product

    make_garment(product)
    products = list(Product.objects.prefetch_related("tryon_garments"))
    template = Template("{% load tryon_tags %}{% for p in products %}{% tryon_button p %}{% endfor %}")
    with django_assert_num_queries(0):
        html = template.render(Context({"products": products}))
    assert html.count('class="tryon-button"') == 1


def test_chinese_labels(product):
    make_garment(product)
    with translation.override("zh-hans"):
        html = render("{% tryon_button product %}", product=product)
    assert re.search(r'class="tryon-button"[^>]*>试穿</button>', html)
    assert 'lang="zh-hans"' in html and 'data-tryon-language="zh-hans"' in html
    assert 'aria-label="关闭"' in html and "正面、全身、单人、光线充足" in html


def _po_entries(path: Path) -> dict[str, str]:
    """msgid → msgstr (msgstr[0] for plurals) of a .po file, header excluded."""
    entries: dict[str, str] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        parts: dict[str, list[str]] = {}
        current = None
        for line in block.splitlines():
            match = re.match(r"(msgid|msgid_plural|msgstr(?:\[0\])?) (\".*\")$", line)
            if match:
                current = match.group(1).replace("[0]", "")
                parts[current] = [match.group(2)]
            elif line.startswith('"') and current:
                parts[current].append(line)
        msgid = "".join(json.loads(s) for s in parts.get("msgid", []))
        if msgid:
            entries[msgid] = "".join(json.loads(s) for s in parts.get("msgstr", []))
    return entries


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_is_translated_and_compiled(domain):
    entries = _po_entries(LOCALE / f"{domain}.po")
    assert entries and not [msgid for msgid, msgstr in entries.items() if not msgstr]
    with open(LOCALE / f"{domain}.mo", "rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = [msgid for msgid, msgstr in entries.items() if compiled._catalog.get(msgid, compiled._catalog.get((msgid, 0))) != msgstr]
    assert not stale, f"run msgfmt: {domain}.mo is older than {domain}.po"


def test_every_widget_string_is_in_the_catalogs():
    root = Path(__file__).resolve().parent.parent / "django_tryon"
    template = (root / "templates" / "django_tryon" / "button.html").read_text(encoding="utf-8")
    script = (root / "static" / "django_tryon" / "tryon.js").read_text(encoding="utf-8")
    in_template = set(re.findall(r'{% translate "([^"]+)" %}', template)) | set(re.findall(r"{% translate '([^']+)' %}", template))
    in_script = {json.loads(f'"{s}"') for s in re.findall(r'gettext\("((?:[^"\\]|\\.)+)"\)', script)}
    assert in_template and in_script
    assert in_template <= set(_po_entries(LOCALE / "django.po"))
    assert in_script <= set(_po_entries(LOCALE / "djangojs.po"))


def test_the_widget_explains_every_limit_the_api_answers():
    """429 codes each get their own sentence in the widget (no "something went wrong" for a daily limit)."""
    import re
    from pathlib import Path

    import django_tryon

    script = (Path(django_tryon.__file__).parent / "static/django_tryon/tryon.js").read_text()
    table = script[script.index("const messages = {") : script.index("};", script.index("const messages = {"))]
    codes = set(re.findall(r"^\s*(\w+):", table, re.M))
    assert {"quota_exceeded", "budget_exceeded", "queue_full", "rate_limited"} <= codes
    assert "today" in re.search(r'quota_exceeded: gettext\("([^"]+)"', table).group(1)
