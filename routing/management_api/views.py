"""The /api/ endpoints: thin DRF viewsets. Validation and saving live in the serializers (the admin's forms,
routing.services); every write runs in one transaction with the history naming who made it."""

from django.db import transaction
from django.db.models import Prefetch
from django.utils.cache import add_never_cache_headers
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from routing import selectors, services
from routing.management_api import filters, history
from routing.management_api.authentication import BearerAuthentication
from routing.management_api.errors import exception_handler
from routing.management_api.pagination import ConfigPagination, LogCursorPagination
from routing.management_api.parsers import StrictJSONParser
from routing.management_api.permissions import BuiltinReadOnly, ReadAuditorWriteOps
from routing.management_api.schema import ManagementAutoSchema
from routing.management_api.serializers.keys import ApiKeyIssuedSerializer, ApiKeySerializer, GatewaySettingsSerializer
from routing.management_api.serializers.logs import RequestLogSerializer
from routing.management_api.serializers.policies import ParamPolicySerializer
from routing.management_api.serializers.routes import (
    DeploymentSerializer,
    GroupFallbackSerializer,
    ModelGroupSerializer,
)
from routing.models import ApiKey, Deployment, GroupFallback, ModelGroup, ParamPolicy, PolicyRule, RequestLog


class AlwaysJSON(DefaultContentNegotiation):
    """Answers are JSON whatever `Accept` says (a browser's text/html would otherwise be a 406)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ManagementViewSet(viewsets.GenericViewSet):
    authentication_classes = [BearerAuthentication, SessionAuthentication]
    permission_classes = [ReadAuditorWriteOps]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    pagination_class = ConfigPagination
    lookup_value_regex = r"[0-9]{1,19}"
    schema = ManagementAutoSchema()

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        repeated = sorted(name for name, values in request.query_params.lists() if len(values) > 1)
        if repeated:  # every parameter here takes one value; Django would silently use the last
            raise ValidationError({name: ["Give this parameter once."] for name in repeated})


class RecordedWrites:
    """Each write in one transaction, its history entries naming who made it (listed before DRF's mixins, whose
    perform_* methods these replace)."""

    def perform_create(self, serializer):
        with transaction.atomic(), history.recorded_as(self.request):
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic(), history.recorded_as(self.request):
            serializer.save()

    def perform_destroy(self, instance):
        with transaction.atomic(), history.recorded_as(self.request):
            history.attribute(instance, self.request)
            instance.delete()


class ConfigViewSet(RecordedWrites, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, mixins.DestroyModelMixin, ManagementViewSet):
    pass


class ModelGroupViewSet(ConfigViewSet):
    """Model groups: the public model names clients send, how to pick among their deployments, retries."""

    queryset = ModelGroup.objects.all()
    serializer_class = ModelGroupSerializer
    filterset_class = filters.ModelGroupFilter
    ordering_fields = ("name", "created_at", "updated_at")
    ordering = ("name",)


class DeploymentViewSet(ConfigViewSet):
    """Deployments: one upstream each (provider, URL, model, write-only key, limits, timeouts, policy)."""

    queryset = Deployment.objects.select_related("group")
    serializer_class = DeploymentSerializer
    filterset_class = filters.DeploymentFilter
    ordering_fields = ("name", "priority", "weight", "created_at", "updated_at")
    ordering = ("group__name", "priority", "id")


class GroupFallbackViewSet(ConfigViewSet):
    """Fallback groups: tried in position order when none of a group's deployments is usable."""

    queryset = GroupFallback.objects.all()
    serializer_class = GroupFallbackSerializer
    filterset_class = filters.GroupFallbackFilter
    ordering_fields = ("position", "id")
    ordering = ("group_id", "position", "id")


class ParamPolicyViewSet(ConfigViewSet):
    """Param policies with their rules (built-in presets are read-only: copy them to edit)."""

    queryset = ParamPolicy.objects.prefetch_related(Prefetch("rules", PolicyRule.objects.order_by("position", "id")))
    serializer_class = ParamPolicySerializer
    permission_classes = [ReadAuditorWriteOps, BuiltinReadOnly]
    filterset_class = filters.ParamPolicyFilter
    ordering_fields = ("name", "updated_at")
    ordering = ("name",)

    @extend_schema(operation_id="policies_copy", request=None, responses={201: ParamPolicySerializer})
    @action(detail=True, methods=["post"], permission_classes=[ReadAuditorWriteOps])
    def copy(self, request, pk=None):
        """An editable copy of a policy (same description, base and rules), named "<name> (copy)"."""
        with transaction.atomic(), history.recorded_as(request):
            copy = services.policy_copy(policy=self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=copy.pk)).data, status=status.HTTP_201_CREATED)


def _once(response: Response) -> Response:
    add_never_cache_headers(response)  # a key in the body: kept by no browser or proxy cache
    return response


@extend_schema_view(create=extend_schema(responses={201: ApiKeyIssuedSerializer}))
class ApiKeyViewSet(ConfigViewSet):
    """Client API keys. The secret is in the answer to create and regenerate only, never readable later."""

    queryset = ApiKey.objects.prefetch_related("allowed_groups")
    serializer_class = ApiKeySerializer
    filterset_class = filters.ApiKeyFilter
    ordering_fields = ("name", "created_at", "expires_at")
    ordering = ("name",)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        data = ApiKeyIssuedSerializer(serializer.instance, context={**self.get_serializer_context(),
                                                                    "issued_key": serializer.issued_key}).data
        return _once(Response(data, status=status.HTTP_201_CREATED))

    @extend_schema(operation_id="keys_regenerate", request=None, responses={200: ApiKeyIssuedSerializer})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """A new secret for the key (same name, groups, limits); the old one stops working within seconds."""
        key = self.get_object()
        with transaction.atomic(), history.recorded_as(request):
            history.attribute(key, request)
            full = services.api_key_regenerate(key=key)
        context = {**self.get_serializer_context(), "issued_key": full}
        return _once(Response(ApiKeyIssuedSerializer(key, context=context).data))

    @extend_schema(operation_id="keys_revoke", request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Deactivate the key (every gateway process drops it within seconds)."""
        key = self.get_object()
        with transaction.atomic(), history.recorded_as(request):
            services.api_keys_revoke(key_ids=[key.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=key.pk)).data)


class RequestLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ManagementViewSet):
    """The request log (read-only), newest first, paged with a cursor; look a row up by its request id
    (the `x-gateway-request-id` response header)."""

    queryset = RequestLog.objects.all()
    serializer_class = RequestLogSerializer
    filterset_class = filters.RequestLogFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = LogCursorPagination
    lookup_field = "request_id"
    lookup_value_regex = r"[A-Za-z0-9_.:-]{1,40}"


class GatewaySettingsViewSet(RecordedWrites, ManagementViewSet):
    """Gateway settings: whether GATEWAY_MASTER_KEY is still accepted (retire it once real keys exist)."""

    serializer_class = GatewaySettingsSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(responses={200: GatewaySettingsSerializer})
    def retrieve(self, request):
        return Response(self.get_serializer(selectors.gateway_settings()).data)

    @extend_schema(responses={200: GatewaySettingsSerializer})
    def partial_update(self, request):
        serializer = self.get_serializer(selectors.gateway_settings(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        self.perform_update(serializer)
        return Response(self.get_serializer(selectors.gateway_settings()).data)

