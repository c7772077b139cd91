"""HTTP layer: routes under /api/v1, dependencies, and the error mapping."""
