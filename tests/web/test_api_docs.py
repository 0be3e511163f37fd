"""/docs: the API reference, rendered from /openapi.json: every operation, its codes, schemas."""

from __future__ import annotations

import re
from typing import Any

from quart.typing import TestClientProtocol as Client

from tests.web.support import json_of

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


async def test_docs_lists_every_operation_of_the_document(client: Client) -> None:
    document: dict[str, Any] = await json_of(await client.get("/openapi.json"))

    response = await client.get("/docs")

    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    operations = [
        op for item in document["paths"].values() for m, op in item.items() if m in HTTP_METHODS
    ]
    assert len(operations) > 100
    for operation in operations:
        assert f'id="op-{operation["operationId"]}"' in html, operation["operationId"]
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html, name


async def test_docs_show_the_error_codes_and_scopes_of_an_operation(client: Client) -> None:
    html = await (await client.get("/docs")).get_data(as_text=True)

    article = re.search(r'<article id="op-saveRetention".*?</article>', html, re.S)

    assert article is not None
    text = article.group(0)
    assert '<code class="code">invalid_retention</code>' in text
    assert '<code class="code">unknown_app</code>' in text
    assert "apiToken (write)" in text
    assert 'href="#schema-RetentionChange"' in text


async def test_docs_escape_what_the_document_says(client: Client) -> None:
    html = await (await client.get("/docs")).get_data(as_text=True)

    # The e-mail pattern has < and >: shown as text, never as markup.
    assert "&lt;&gt;" in html
    assert "<script>" not in html.split("</head>", 1)[1]
