from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ceiling.models import Reading, Recommendation


class ReadingIn(serializers.Serializer[dict[str, Any]]):
    taken_at = serializers.DateTimeField()
    systolic = serializers.IntegerField(min_value=50, max_value=300)
    diastolic = serializers.IntegerField(min_value=25, max_value=200)
    heart_rate = serializers.IntegerField(required=False, allow_null=True)
    source = serializers.CharField(max_length=8)  # type: ignore[assignment]  # DRF's Field.source, like the product


class ReadingOut(serializers.ModelSerializer[Reading]):
    class Meta:
        model = Reading
        fields = ["id", "taken_at", "systolic", "diastolic", "heart_rate", "source", "received_at"]


class ReadingCreate(APIView):
    def post(self, request: Request) -> Response:
        incoming = ReadingIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        # mypy's Django settings are the product's, which do not install this app.
        reading = Reading.objects.create(  # type: ignore[attr-defined]
            patient_id=1, received_at=timezone.now(), **incoming.validated_data
        )
        return Response(ReadingOut(reading).data, status=status.HTTP_201_CREATED)


class RecommendationOut(serializers.ModelSerializer[Recommendation]):
    class Meta:
        model = Recommendation
        exclude = ["patient_id"]


class RecommendationList(generics.ListAPIView[Recommendation]):
    serializer_class = RecommendationOut

    def get_queryset(self) -> Any:
        patient = self.request.query_params.get("patient", "0")
        return Recommendation.objects.filter(  # type: ignore[attr-defined]
            patient_id=int(patient)
        ).order_by("-created_at", "-pk")
