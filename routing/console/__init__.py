"""The ops console's own pages (served inside the admin): policy preview, deployment test, dashboard, CSV export.

Views here are thin: they read through `routing.selectors` and `routing.console.stats`, write through
`routing.services`, and compute what the upstream would receive with `routing.forwarding.upstream_request`,
the engine live traffic uses.
"""
