"""Every route of the API, grouped by resource; ``all_routes()`` is what the app serves."""

from __future__ import annotations

from starlette.routing import Route

from api.http.resource import resource
from api.routes import auth, categories, meta, products


def all_routes() -> list[Route]:
    return [
        resource("/auth/register", POST=auth.register),
        resource("/auth/login", POST=auth.login),
        resource("/auth/logout", POST=auth.logout),
        resource("/users/me", GET=auth.me),
        resource("/categories", GET=categories.list_, POST=categories.create),
        resource(
            "/categories/{category_id}",
            GET=categories.get,
            PUT=categories.update,
            DELETE=categories.delete,
        ),
        resource("/products", GET=products.list_, POST=products.create),
        resource(
            "/products/{product_id}",
            GET=products.get,
            PUT=products.update,
            DELETE=products.delete,
        ),
        resource("/health/live", GET=meta.live),
        resource("/health/ready", GET=meta.ready),
        resource("/version", GET=meta.version),
        resource("/metrics", GET=meta.metrics),
        resource("/openapi.json", GET=meta.openapi),
    ]
