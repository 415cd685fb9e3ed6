"""The ``{% tryon_button %}`` template tag: when it shows, what it renders once per page, its languages."""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from django.utils import translation

import django_tryon
from django_tryon.messages import MESSAGES, message_for
from django_tryon.templatetags.tryon_tags import api_root

from .conftest import make_garment

pytestmark = pytest.mark.django_db
PACKAGE = Path(django_tryon.__file__).parent  # the installed copy under make wheel-test
LOCALE = PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES"


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
    assert f'data-tryon-product="{product.pk}"' in button.group(
        0
    ) and 'aria-controls="tryon-dialog"' in button.group(0)
    assert '<dialog class="tryon-dialog" id="tryon-dialog" aria-labelledby="tryon-title"' in html
    assert 'data-tryon-api="/tryon/api/"' in html and api_root() == "/tryon/api/"
    assert 'type="file" accept="image/*" capture="user"' in html
    assert 'data-tryon="consent"' in html and "disabled" in html  # the upload waits for consent
    assert 'name="csrfmiddlewaretoken"' in html
    assert request.META.get("CSRF_COOKIE_NEEDS_UPDATE")  # so the response sets the csrftoken cookie
    for text in (
        "Front-facing, full body, alone, good light",
        "No other people",
        "Nothing in your hands, no bag",
        "Not too dark or blurry",
        "No half-body, sitting or side-on photos",
    ):
        assert text in html
    assert html.count("<svg") >= 6  # the pictograms are inline SVG, no photos


def test_assets_and_dialog_once_per_page(product):
    """One page is one response: buttons in included templates (and in several templates rendered for it)
    share one set of assets and one dialog, kept with the request."""
    from tests.testapp.models import Product

    make_garment(product)
    other = Product.objects.create(name="Blue tee")
    make_garment(other, color=(30, 30, 160))
    card = Template("{% load tryon_tags %}<div class=card>{% tryon_button item %}</div>")
    page = "<head>{% tryon_assets %}</head>{% for item in products %}{% include card %}{% endfor %}{% tryon_button extra %}"
    request = RequestFactory().get("/shop/")
    html = render(page, request, products=[product, other], card=card, extra=product)
    assert html.count('class="tryon-button"') == 3
    assert html.count("django_tryon/tryon.js") == 1 and html.count("django_tryon/tryon.css") == 1
    assert html.count("/tryon/jsi18n/") == 1
    assert html.index("/tryon/jsi18n/") < html.index("django_tryon/tryon.js")  # the catalog loads first
    assert (
        html.count("<dialog") == 1
        and html.count('id="tryon-figure"') == 1
        and html.count('id="tryon-messages"') == 1
    )
    footer = render(
        "{% tryon_button product %}", request, product=product
    )  # another template of the same response
    assert footer.count('class="tryon-button"') == 1 and "<dialog" not in footer and "tryon.js" not in footer
    # The next request (the next page) gets its own assets and dialog.
    again = render("{% tryon_button product %}", RequestFactory().get("/shop/"), product=product)
    assert again.count("django_tryon/tryon.js") == 1 and again.count("<dialog") == 1


def test_without_a_request_once_per_template(product):
    """No request in the context (an email, a bare Template.render): Django's per-template render state."""
    make_garment(product)
    html = render(
        "{% tryon_assets %}{% for p in products %}{% tryon_button p %}{% endfor %}", products=[product] * 3
    )
    assert (
        html.count('class="tryon-button"') == 3 and html.count("tryon.js") == 1 and html.count("<dialog") == 1
    )
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
    stale = [
        msgid
        for msgid, msgstr in entries.items()
        if compiled._catalog.get(msgid, compiled._catalog.get((msgid, 0))) != msgstr
    ]
    assert not stale, f"run msgfmt: {domain}.mo is older than {domain}.po"


def test_every_widget_string_is_in_the_catalogs():
    template = "".join(
        (PACKAGE / "templates" / "django_tryon" / name).read_text(encoding="utf-8")
        for name in ("button.html", "dialog.html", "share.html", "share_gone.html")
    )
    script = (PACKAGE / "static" / "django_tryon" / "tryon.js").read_text(encoding="utf-8")
    in_template = set(re.findall(r'{% translate "([^"]+)" %}', template)) | set(
        re.findall(r"{% translate '([^']+)' %}", template)
    )
    in_script = {json.loads(f'"{s}"') for s in re.findall(r'gettext\("((?:[^"\\]|\\.)+)"\)', script)}
    assert in_template and in_script
    assert in_template <= set(_po_entries(LOCALE / "django.po"))
    assert in_script <= set(_po_entries(LOCALE / "djangojs.po"))


# -- one message table: the server's, shown by the widget -------------------------------------------
SCRIPT = PACKAGE / "static" / "django_tryon" / "tryon.js"
CODE_LITERAL = re.compile(
    r"""\b(?:code|error_code)=["']([A-Za-z_.]+)["']|(?:envelope|_error)\(["']([A-Za-z_.]+)["']|\(["']([a-z_]+)["'], status\.HTTP"""
)


def api_codes() -> set[str]:
    """Every code the API can answer with or a job can fail with: the catalogue's, every literal the package
    raises or stores, what the backends map provider answers to, and provider codes passed through as is."""
    from django_tryon.backends import dashscope, fashn

    found = set(MESSAGES) | {"ConfigurationError"}  # pipeline.fail(): a TryOnConfigurationError has no code
    for path in [*PACKAGE.glob("*.py"), *PACKAGE.glob("api/*.py"), *PACKAGE.glob("backends/*.py")]:
        found |= {next(g for g in match.groups() if g) for match in CODE_LITERAL.finditer(path.read_text())}
    found |= set(fashn.RUNTIME_CODES.values()) | dashscope.BILLING_CODES | dashscope.RETRYABLE_CODES
    return found | {"InvalidParameter.DataInspection", "BadRequest.EmptyInput", "Throttling.RateQuota"}


def rendered_table(product, language: str) -> dict[str, str]:
    with translation.override(language):
        html = render("{% tryon_button product %}", RequestFactory().get("/p/"), product=product)
    found = re.search(r'<script id="tryon-messages" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the dialog carries the server's messages"
    return json.loads(found.group(1))


def test_every_code_the_package_uses_has_a_message():
    """A code without a catalogue entry (or a family's) would reach shoppers as the generic "The try-on failed"."""
    missing = sorted(c for c in api_codes() if c not in MESSAGES and c.split(".")[0] not in MESSAGES)
    assert (
        missing == [] and {"quota_exceeded", "budget_exceeded", "queue_full", "rate_limited"} <= api_codes()
    )


def test_the_documented_messages_are_the_catalogues():
    """docs/lifecycle.rst's table of job error codes says what shoppers are shown, word for word."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "lifecycle.rst").read_text(encoding="utf-8")
    rows = re.findall(r"^   \* - (``.+``)\n     - (.+)\n     - (.+)$", text, re.M)
    assert len(rows) > 20
    for codes, english, chinese in rows:
        for code in re.findall(r"``(\w+)``", codes):
            assert (message_for(code, "en"), message_for(code, "zh-hans")) == (english, chinese), code


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_widget_carries_the_servers_messages(product, language):
    make_garment(product)
    table = rendered_table(product, language)
    assert table == {code: message_for(code, language) for code in MESSAGES}
    assert "tomorrow" in rendered_table(product, "en")["quota_exceeded"]  # a daily limit, not "wait a little"
    script = SCRIPT.read_text(encoding="utf-8")
    assert not [
        code for code in MESSAGES if re.search(rf"\b{re.escape(code)}: gettext\(", script)
    ]  # no second table


def run_node(source: str) -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is missing; required under CI (apt-get install nodejs)")
        pytest.skip("node is missing (required under CI=true)")
    done = subprocess.run([node, "-e", source], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_widget_says_what_the_server_says_for_every_code(product, language):
    """tryon.js itself (in node, with the table the page carries): for every code, the sentence the widget
    shows is the server's message, for an API error envelope and for a failed job alike."""
    make_garment(product)
    table = rendered_table(product, language)
    codes = sorted(api_codes())
    detail = "The file is 12 bytes; it must be at least 5 KB (5120 bytes)."
    cases = []
    for code in codes:  # the API's envelope: the English detail, or the catalogue's message in Chinese
        sent = message_for(code, language, detail) if language != "en" else detail
        cases.append(
            {
                "error": {"code": code, "message": sent, "status": 400},
                "expected": message_for(code, language, sent),
            }
        )
    for code in codes:  # a failed job: TryOnSerializer.get_error() sends the catalogue's message
        sent = message_for(code, language, "provider words")
        cases.append({"error": {"code": code, "message": sent, "status": 200}, "expected": sent})
    harness = f"""
        const vm = require("vm"), fs = require("fs");
        global.window = global;
        global.document = {{readyState: "complete", addEventListener() {{}}, querySelectorAll() {{ return []; }}}};
        vm.runInThisContext(fs.readFileSync({json.dumps(str(SCRIPT))}, "utf8"));
        const table = {json.dumps(table)}, cases = {json.dumps(cases)};
        process.stdout.write(JSON.stringify(cases.map((c) => window.djangoTryOn.describe(c.error, table).text)));
    """
    shown = json.loads(run_node(harness))
    wrong = [
        (case["error"]["code"], text)
        for case, text in zip(cases, shown, strict=True)
        if text != case["expected"]
    ]
    assert wrong == [] and len(shown) == 2 * len(codes) > 80


# -- after the picture: add to cart, share; the dialog without a button (issue 15) -------------------
def test_result_view_has_add_to_cart_and_share(product):
    make_garment(product)
    html = render("{% tryon_button product %}", RequestFactory().get("/p/"), product=product)
    assert 'data-tryon-cart-url=""' in html  # no ADD_TO_CART_URL: only the event, the button stays hidden
    assert re.search(r'data-tryon-action="add-to-cart" hidden>Add to cart</button>', html)
    assert 'data-tryon-action="share">Share</button>' in html and 'data-tryon-action="unshare"' in html
    assert "shows only this picture, never your photo" in html
    with translation.override("zh-hans"):
        chinese = render("{% tryon_button product %}", RequestFactory().get("/p/"), product=product)
    assert (
        ">加入购物车</button>" in chinese and ">分享</button>" in chinese and ">停止分享</button>" in chinese
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/cart/add/", "/cart/add/"),
        ("https://shop.example/cart/add/", "https://shop.example/cart/add/"),
        ("admin:index", "/admin/"),  # a URL name, reversed
        ("no-such-url-name", ""),  # logged; the product page still renders
        (None, ""),
    ],
)
def test_add_to_cart_url_setting(product, settings, caplog, value, expected):
    make_garment(product)
    settings.TRYON = {**settings.TRYON, "ADD_TO_CART_URL": value}
    html = render("{% tryon_button product %}", RequestFactory().get("/p/"), product=product)
    assert f'data-tryon-cart-url="{expected}"' in html
    assert ("neither a path" in caplog.text) is (value == "no-such-url-name")


def test_dialog_tag_without_a_button(product):
    """{% tryon_dialog %}: the dialog for window.djangoTryon.open(), once per page, with the assets."""
    make_garment(product)
    request = RequestFactory().get("/cart/")
    html = render("<head>{% tryon_assets %}</head><body>{% tryon_dialog %}{% tryon_dialog %}</body>", request)
    assert html.count("<dialog") == 1 and html.count("tryon.js") == 1 and 'class="tryon-button"' not in html
    assert 'name="csrfmiddlewaretoken"' in html and 'id="tryon-messages"' in html
    assert request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    alone = render("{% tryon_dialog %}", RequestFactory().get("/"))  # assets too when the head has none
    assert alone.index("tryon.js") < alone.index("<dialog") and alone.count("<dialog") == 1
    both = render("{% tryon_button product %}{% tryon_dialog %}", RequestFactory().get("/"), product=product)
    assert both.count("<dialog") == 1  # a button's dialog is the page's dialog
    after = render("{% tryon_dialog %}{% tryon_button product %}", RequestFactory().get("/"), product=product)
    assert after.count("<dialog") == 1 and after.count('class="tryon-button"') == 1


def test_js_api_object(product):
    """window.djangoTryon (and its earlier name) in node: open() without a dialog on the page says so."""
    harness = f"""
        const vm = require("vm"), fs = require("fs");
        global.window = global;
        const warnings = [];
        global.console = {{ warn: (text) => warnings.push(text) }};
        const listeners = {{}};
        global.document = {{
            readyState: "complete", querySelectorAll() {{ return []; }}, querySelector() {{ return null; }},
            addEventListener(type, fn) {{ (listeners[type] = listeners[type] || []).push(fn); }},
            removeEventListener(type, fn) {{ listeners[type] = listeners[type].filter((f) => f !== fn); }},
        }};
        vm.runInThisContext(fs.readFileSync({json.dumps(str(SCRIPT))}, "utf8"));
        const api = window.djangoTryon;
        const off = api.on("succeeded", () => {{}});
        const before = listeners["tryon:succeeded"].length;
        off();
        process.stdout.write(JSON.stringify({{
            alias: window.djangoTryOn === api,
            methods: ["open", "close", "on", "job", "init", "checkFile", "describe"].filter((m) => typeof api[m] === "function"),
            opened: api.open(1), job: api.job(), warned: warnings.join(" "),
            listening: [before, listeners["tryon:succeeded"].length],
        }}));
    """
    result = json.loads(run_node(harness))
    assert result["alias"] and len(result["methods"]) == 7
    assert result["opened"] is False and result["job"] is None and "{% tryon_dialog %}" in result["warned"]
    assert result["listening"] == [1, 0]
