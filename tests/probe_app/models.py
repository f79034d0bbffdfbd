from django.db import models

from salesos.encryption import EncryptedTextField
from tenants.models import TenantOwned


class ProbeParent(TenantOwned):
    name = models.CharField(max_length=50)


class ProbeChild(TenantOwned):
    parent = models.ForeignKey(ProbeParent, on_delete=models.CASCADE, related_name="children")
    name = models.CharField(max_length=50)


class ProbeSecret(TenantOwned):
    label = models.CharField(max_length=50)
    token = EncryptedTextField(blank=True)
