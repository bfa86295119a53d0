"""The floor: the least an ASGI app can do to answer a request with the service's
JSON envelope. ``make bench`` serves it with uvicorn + httptools + uvloop (in
``bench/.floor-venv``) on the same pinned CPU as Paradarum, so every other figure
is read as a share of what this machine's Python HTTP stack can do at all."""

import json

HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps({"succeeded": True, "message": "ok", "data": {"status": "ok"}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*HEADERS, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
