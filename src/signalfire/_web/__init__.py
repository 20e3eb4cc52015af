"""The request path: the ASGI middleware, the URL policy and the access-log line of one request."""
