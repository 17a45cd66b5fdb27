"""The operator and product JSON API under /api/v1 (`routes` collects it), the webhook intake
helpers (`http`) and the OpenAPI document (`openapi`)."""
