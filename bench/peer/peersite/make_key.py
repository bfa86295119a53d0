"""Print a new API key made the documented way (``APIKey.objects.create_key``)."""

import django

django.setup()

from rest_framework_api_key.models import APIKey  # noqa: E402

_, key = APIKey.objects.create_key(name="bench")
print(key)
