"""Imports every model module so that the metadata is complete (Alembic, tests).

Add one line per new model module.
"""

from licenses.models import (  # noqa: F401
    BlacklistEntry,
    DocumentSequence,
    LedgerJournal,
    LedgerLine,
    License,
    LicenseItem,
    Payment,
    Refund,
    WebhookEvent,
)
from market.accounts.models import ApiToken, Organization, User  # noqa: F401
from market.audit.models import AuditCheckpoint, AuditEvent  # noqa: F401
from market.consents.models import Consent, Lookup  # noqa: F401
from market.datasets.models import Dataset, DatasetColumn, DatasetContributor, DatasetVersion  # noqa: F401
from market.quotes.models import PricingParameterSet, Quote  # noqa: F401
from sandbox.models import SandboxQuery  # noqa: F401
from sandbox.models import PrivacySpending, SandboxRelease, VersionSpending  # noqa: F401
