"""The client-readable plan as an HTML page: the view model through a Jinja2 template.

Autoescaping is on for every template; the only markup passed through unescaped is the network
picture, which svg.py builds with every text escaped. Templates see the view model and the
words of texts.py only, never FHIR.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from gateway.coordination.render import texts
from gateway.coordination.render.model import ClientPlanView
from gateway.coordination.render.svg import network_svg

TEMPLATE = "client_plan.html.j2"


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("gateway.coordination.render", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,  # a misspelt field fails the tests, not the page
        auto_reload=False,  # templates ship with the package: no stat() per request
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def stylesheet() -> str:
    return files("gateway.coordination.render").joinpath("templates/client_plan.css").read_text()


def render_html(view: ClientPlanView) -> str:
    def t(key: str, **values: str) -> str:
        return texts.text(view.lang, key, **values)

    template = environment().get_template(TEMPLATE)
    return template.render(
        v=view,
        t=t,
        css=Markup(stylesheet()),  # our own file, not data
        svg=Markup(network_svg(view)),  # every text inside is escaped by svg.py
    )
