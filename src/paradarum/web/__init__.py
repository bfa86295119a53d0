"""The HTTP edge: the JSON API and the panel. Routes parse, call one service, answer."""
