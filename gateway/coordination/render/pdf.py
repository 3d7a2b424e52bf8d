"""The client-readable plan as a printable PDF (A4): the same HTML page through WeasyPrint.

WeasyPrint fetches nothing: the page carries its stylesheet and picture inline, and the URL
fetcher refuses every URL, so a link in the data can never make the server reach out.
"""

from __future__ import annotations

from typing import Any, NoReturn

from weasyprint import HTML

from gateway.coordination.render.html import render_html
from gateway.coordination.render.model import ClientPlanView


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError("the client plan loads no external resources")


def render_pdf(view: ClientPlanView) -> bytes:
    document = HTML(string=render_html(view), url_fetcher=_no_fetch, base_url=None)
    return bytes(document.write_pdf(media_type="print"))
