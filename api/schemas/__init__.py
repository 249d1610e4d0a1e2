"""Request and response bodies (pydantic). The OpenAPI document is generated from these."""
