"""JSON API of webhook deliveries."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks import services


class RedeliverView(APIView):
    """POST: send the execution's webhook again as a new attempt series with the same webhook-id."""

    def post(self, request, execution_id: str):
        delivery = services.redeliver(execution_id, timezone.now())
        return Response({"status": "queued", "delivery_id": str(delivery.id)}, status=status.HTTP_202_ACCEPTED)
