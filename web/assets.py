"""Where the templates, static files and Procfile are: in the installed wheel or the checkout."""

from __future__ import annotations

from pathlib import Path

_WEB = Path(__file__).resolve().parent
# A wheel carries them as web/shipped/ (pyproject.toml maps the checkout's top there).
_INSTALLED = _WEB / "shipped"
# In a checkout (an editable install included) they stand at the top of it.
_CHECKOUT = _WEB.parent


# The folder holding templates/, static/ and the Procfile.
SHIPPED = _INSTALLED if (_INSTALLED / "Procfile").is_file() else _CHECKOUT
TEMPLATES_DIR = SHIPPED / "templates"
STATIC_DIR = SHIPPED / "static"
PROCFILE = SHIPPED / "Procfile"
