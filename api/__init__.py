"""REST API and browser pages: :func:`api.app.create_app` builds the aiohttp application.

``api.live.LiveCalls`` is what the API asks of calls in progress (the gateway implements it);
``api.schemas`` holds the request/response models the handlers validate with and the OpenAPI
document is generated from.
"""
