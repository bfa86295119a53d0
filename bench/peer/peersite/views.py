"""The two endpoints compared: open, and key-authenticated (``HasAPIKey``, the
project-wide default). The key-authed view does no work beyond the permission
check, which favours the peer over Paradarum's ``GET /api/account``."""

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class Health(APIView):
    permission_classes = (AllowAny,)

    def get(self, request):
        return Response({"succeeded": True, "message": "ok", "data": {"status": "ok"}})


class Account(APIView):
    def get(self, request):
        return Response({"succeeded": True, "message": "Account", "data": {"status": "ok"}})
