"""Usable on a tablet, and accessible (issue 11), the parts a server answer decides: the skip link and its
target, the favicon (no page logs a 404 for it), and the error pages that keep what the user typed: the
lock-out page (django-axes and the signature lock-out) and the CSRF failure page.

What a browser decides (nothing wider than 390 px and 768 px, no console errors, no 404s) is checked in
tests/e2e/test_browser_tablet.py on every portal page, as every persona.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.contrib.staticfiles import finders
from django.test import Client

from clinaiops.core.models import User
from tests.factories import PASSWORD

REASON = "BP uncontrolled on three cuff readings; titrate <b>now</b>"


def test_every_staff_page_starts_with_a_skip_link_to_the_main_content_and_names_its_icon(
    clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    for url, client in (("/login/", Client()), ("/patients/", portal_client_for(clinician))):
        html = client.get(url).content.decode()
        skip = re.search(r'<a class="skip-link" href="#(\w+)">', html)
        assert skip and f'<main id="{skip.group(1)}" tabindex="-1">' in html
        assert html.index("skip-link") < html.index('<header class="top">')  # the first thing a Tab reaches
        icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
        assert icon and icon.group(1).endswith("portal/favicon.svg")


def test_favicon_ico_is_answered_never_a_404(db: None) -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("portal/favicon.svg")
    assert finders.find("portal/favicon.svg") is not None


# --- The lock-out page -------------------------------------------------------------------------------------------


def test_the_lock_out_page_is_styled_links_back_and_keeps_the_username_never_the_password(
    clinician: User, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        Client().post("/login/", {"username": clinician.username, "password": "guess-one"})
    locked = Client().post("/login/", {"username": clinician.username, "password": "secret-typed-here"})
    assert locked.status_code == 429 and locked["Retry-After"]
    html = locked.content.decode()
    assert "<h1>Account locked</h1>" in html
    assert re.search(rf'name="username" id="id_username" value="{clinician.username}"', html)
    assert "secret-typed-here" not in html and "guess-one" not in html
    assert 'href="/login/">Back to sign in</a>' in html and 'href="/">Back to the start</a>' in html
    assert 'rel="stylesheet"' in html  # the portal's page, not a bare error


def test_the_signature_lock_out_gets_the_same_page(clinician: User, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    User.objects.filter(pk=clinician.pk).update(locked_until=timezone.now() + timedelta(minutes=30))
    locked = Client().post("/login/", {"username": clinician.username, "password": PASSWORD})
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "<h1>Account locked</h1>" in html and "about 30 minutes" in html
    assert f'value="{clinician.username}"' in html and PASSWORD not in html


# --- The CSRF failure page ---------------------------------------------------------------------------------------


def test_a_form_refused_for_its_token_keeps_what_was_typed_but_never_a_password(
    pending_recommendation: Any, clinician: User
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    url = f"/recommendations/{pending_recommendation.pk}/"
    response = client.post(
        url,
        {"outcome": "modified", "to_step": "3", "reason": REASON, "password": PASSWORD, "csrfmiddlewaretoken": "x"},
        HTTP_ORIGIN="http://testserver",
        HTTP_REFERER=f"http://testserver{url}",
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html and "Nothing was saved" in html
    # The reason is kept, escaped, in a read-only box with no form around it: nothing here can be submitted.
    assert "BP uncontrolled on three cuff readings; titrate &lt;b&gt;now&lt;/b&gt;</textarea>" in html
    assert re.search(r"<textarea [^>]*readonly", html)
    main = html.split('<main id="main"', 1)[1].split("</main>")[0]
    assert "<form" not in main and 'name="reason"' not in main
    assert PASSWORD not in html and 'value="x"' not in html
    assert f'href="{url}">Back to the page</a>' in html
    assert "no-store" in response["Cache-Control"]
    assert pending_recommendation.__class__.objects.get(pk=pending_recommendation.pk).status == "pending_review"


def test_a_cross_site_post_is_refused_without_showing_anything_it_sent(db: None) -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/login/",
        {"username": "someone", "reason": "Text another site wants shown under our name"},
        HTTP_ORIGIN="https://evil.example",
        HTTP_REFERER="https://evil.example/form",
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html
    assert "another site wants shown" not in html and "someone" not in html
    assert "evil.example" not in html  # the link back never leaves the portal


def test_the_csrf_page_never_echoes_codes_tokens_or_a_search_term(clinician: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    response = client.post(
        "/patients/",
        {"q": "LINDQVIST, Leopold", "code": "123456", "token": "abc", "note": "kept"},
        HTTP_ORIGIN="http://testserver",
    )
    html = response.content.decode()
    assert response.status_code == 403
    assert "LINDQVIST" not in html and "123456" not in html and ">abc<" not in html
    assert ">kept</textarea>" in html
