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
from market.accounts.models import ApiToken, LoginThrottle, Organization, User, UserSession  # noqa: F401
from market.agreements.models import Agreement, DepartmentKey  # noqa: F401
from market.audit.models import AuditCheckpoint, AuditEvent, AuditHeadObservation  # noqa: F401
from market.consents.models import Consent, Lookup  # noqa: F401
from market.datasets.models import Dataset, DatasetColumn, DatasetContributor, DatasetVersion  # noqa: F401
from market.governance.models import (  # noqa: F401
    LicenseRegulatorDecision,
    ListEntry,
    RegistrationCertificate,
)
from market.leases import JobLease  # noqa: F401
from market.metrics.models import HttpLatencyBucket  # noqa: F401
from market.notifications.models import EmailOutbox, Notification  # noqa: F401
from market.quotes.models import PricingParameterSet, PricingProposal, Quote  # noqa: F401
from market.scenarios.models import (  # noqa: F401
    DataProduct,
    DataProductItem,
    Scenario,
    ScenarioDataset,
)
from sandbox.models import (  # noqa: F401
    PrivacySpending,
    SandboxQuery,  # noqa: F401
    SandboxRelease,
    VersionSpending,
)
