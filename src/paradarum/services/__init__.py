"""The rules of the service. Nothing here imports the web framework."""
