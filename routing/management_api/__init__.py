"""The management and audit REST API under /api/ (DRF), served by Django's standard handler with its
middleware, like the admin (gateway/asgi.py sends only /v1 to the lean handler).

- `authentication`: `Authorization: Bearer <management token | GATEWAY_MASTER_KEY>`, or the admin session
  (CSRF enforced); `roles`: ops (read and write) and auditor (read only), from Django groups.
- `serializers/`: one per resource. Writes are validated by the admin's own ModelForms (`validation`) and
  saved through `routing.services`, so the API and the admin share every rule; model signals bump the
  route version, so every gateway process picks a change up as it does an admin save; `history` names
  the user (and the credential) in the config history.
- `views`, `filters`, `pagination`, `urls`: the endpoints; `errors`: one JSON error shape;
  `schema`: the OpenAPI 3 schema (drf-spectacular) and its docs pages.
"""
