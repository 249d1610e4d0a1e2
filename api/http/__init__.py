"""The HTTP edge: endpoint declarations, middleware, error bodies and the OpenAPI document."""
