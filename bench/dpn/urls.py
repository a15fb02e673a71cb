from django.urls import include, path
from push_notifications.api.rest_framework import APNSDeviceAuthorizedViewSet
from rest_framework.routers import DefaultRouter

router = DefaultRouter()
router.register("device/apns", APNSDeviceAuthorizedViewSet)

urlpatterns = [path("", include(router.urls))]
