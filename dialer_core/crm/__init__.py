"""The omnichannel CRM: the second source system captured by Contour (database ``crm``).

Customers reach the service desk through calls, chats, e-mail and messengers; each contact is an
*appeal*. Appeals may spawn *tickets* (tasks or claims) routed by topic to specialist groups with
an SLA per type on business calendars. A repeat appeal of the same customer on the same topic
within a window is linked to the first one instead of opening a new case. Answers leave through
the channel the appeal came from.

Every behaviour is a plain function over a psycopg connection that runs in one transaction
(``conn.transaction()``), so callers can compose them and nothing is ever half-written. Time is
always passed in (from the shared :mod:`dialer_core.clock`), never read from the system.
"""

from __future__ import annotations

from pathlib import Path

from dialer_core import migrations

COMPONENT = "crm"
DATABASE = "crm"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def migrate(dsn: str) -> list[str]:
    """Apply the CRM's pending migrations to the database at ``dsn``."""
    return migrations.migrate(dsn, MIGRATIONS_DIR, COMPONENT)
