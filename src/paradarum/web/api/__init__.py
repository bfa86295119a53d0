"""JSON API routes, one module per resource; ``ROUTES`` lists them all."""
