"""Authentication and authorisation of the broker's peers: CurveZMQ keys, the allow-list, roles (docs/security.md)."""
