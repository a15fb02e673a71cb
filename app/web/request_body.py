"""Request bodies sent without a Content-Length (``Transfer-Encoding: chunked``)."""

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge


def refuse_oversized_chunked_body():
    """``before_request``: werkzeug checks a chunked body against MAX_CONTENT_LENGTH only by
    stopping at the limit without a word, so a view would see a truncated document (a 400
    for bad JSON). Read the body here and answer 413 when more of it follows."""
    limit = request.max_content_length
    if limit is None or request.content_length is not None or not has_chunked_body():
        return
    if len(request.get_data(cache=True)) == limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def has_chunked_body():
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()
