"""REST API for data requests (P18): create and read requests, download export archives.

Authenticated with the business's API keys (`tenants.api_auth`); every query runs for the
key's business, so another business's request is a 404.
"""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from privacy import dsr
from privacy.access_log import Action, record_access
from privacy.models import DataRequest
from privacy.views.requests import export_response


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


class DataRequestSerializer(serializers.ModelSerializer):
    export_url = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = DataRequest
        fields = [
            "id",
            "kind",
            "status",
            "source",
            "subject_phone",
            "subject_email",
            "contact",
            "due_date",
            "overdue",
            "findings",
            "result",
            "verification",
            "failure_reason",
            "export_url",
            "export_expires_at",
            "created_at",
            "confirmed_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_export_url(self, obj) -> str | None:
        if not obj.makes_archive or obj.export_expires_at is None:
            return None
        return f"/api/v1/data-requests/{obj.pk}/export/"

    def get_overdue(self, obj) -> bool:
        return obj.is_overdue()


class CreateDataRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DataRequest.Kind.choices)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    changes = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Carry the request out at once instead of waiting for a confirmation.",
    )


class DataRequestList(APIView):
    @extend_schema(responses=DataRequestSerializer(many=True))
    def get(self, request):
        queryset = DataRequest.objects.select_related("tenant").order_by("-created_at", "-id")
        kind = request.query_params.get("kind")
        if kind:
            queryset = queryset.filter(kind=kind)
        wanted = request.query_params.get("status")
        if wanted:
            queryset = queryset.filter(status=wanted)
        listed = list(queryset[:200])
        # Each holds a person's phone, e-mail and what was found of them: one entry per read.
        _record_read(request, detail=_("listed %(count)s data requests") % {"count": len(listed)})
        return Response(DataRequestSerializer(listed, many=True).data)

    @extend_schema(request=CreateDataRequestSerializer, responses={201: DataRequestSerializer})
    def post(self, request):
        payload = CreateDataRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            data_request = dsr.create_request(
                kind=data["kind"],
                phone=data.get("phone", ""),
                email=data.get("email", ""),
                notes=data.get("notes", ""),
                changes=data.get("changes"),
                source=DataRequest.Source.API,
            )
        except dsr.DuplicateRequest as exc:
            return Response(
                {"detail": exc.detail, "existing": DataRequestSerializer(exc.existing).data},
                status=status.HTTP_409_CONFLICT,
            )
        except dsr.DataRequestError as exc:
            return Response({exc.field or "detail": [exc.detail]}, status=400)
        if data["confirm"]:
            data_request = dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
        return Response(DataRequestSerializer(data_request).data, status=status.HTTP_201_CREATED)


def _get(data_request_id) -> DataRequest:
    data_request = (
        DataRequest.objects.select_related("contact", "tenant").filter(pk=data_request_id).first()
    )
    if data_request is None:
        raise Http404
    return data_request


def _via(request) -> str:
    """How an access log entry names the API key a read came through."""
    return _(" via API key %(prefix)s…") % {"prefix": request.auth.prefix}


def _record_read(request, *, detail: str, data_request: DataRequest | None = None) -> None:
    """The access log entry of a read through the API, in the name of the key's creator."""
    record_access(
        request=request,
        actor=request.auth.created_by,
        action=Action.VIEWED_DATA_REQUEST,
        obj=data_request,
        subject=data_request.contact if data_request is not None else None,
        detail=detail + _via(request),
    )


class DataRequestDetail(APIView):
    @extend_schema(responses=DataRequestSerializer)
    def get(self, request, data_request_id: int):
        data_request = _get(data_request_id)
        _record_read(
            request,
            data_request=data_request,
            detail=_("data request #%(id)s") % {"id": data_request.pk},
        )
        return Response(DataRequestSerializer(data_request).data)


class DataRequestExport(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, data_request_id: int):
        data_request = _get(data_request_id)
        if not data_request.makes_archive:
            return Response({"detail": _("This request has no archive.")}, status=404)
        if data_request.export_expires_at is None:
            return Response(
                {"detail": _("The archive is not ready yet."), "status": data_request.status},
                status=409,
            )

        def gone():
            return JsonResponse(
                {"detail": _("The archive has expired and was deleted; request a new export.")},
                status=410,
            )

        return export_response(
            request, data_request, gone=gone, actor=request.auth.created_by, via=_via(request)
        )
