"""ASGI applications the integration tests run under a real uvicorn, in their own processes."""
