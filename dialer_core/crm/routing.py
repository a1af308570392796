"""Ticket routing: which specialist group handles a topic (in a region).

The most specific topic wins: the topic's own route, else its parent's, up the tree; at each
level a route for the ticket's region beats the one for any region. Routes are data
(``topic_routes``) so that supervisors change them without a release.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dialer_core.crm.db import one
from dialer_core.crm.errors import ValidationError

_ROUTE = """
WITH RECURSIVE chain (topic_id, depth) AS (
    SELECT topic_id, 0 FROM topics WHERE topic_id = %(topic)s
    UNION ALL
    SELECT t.parent_topic_id, c.depth + 1
    FROM chain c JOIN topics t ON t.topic_id = c.topic_id
    WHERE t.parent_topic_id IS NOT NULL AND c.depth < 32
)
SELECT r.group_id
FROM chain c
JOIN topic_routes r ON r.topic_id = c.topic_id
    AND (r.region_id = %(region)s OR r.region_id IS NULL)
ORDER BY c.depth, r.region_id NULLS LAST
LIMIT 1
"""


def route_group(conn: psycopg.Connection[Any], topic_id: int, region_id: int | None) -> int:
    """The group a ticket on ``topic_id`` in ``region_id`` goes to."""
    row = one(conn, _ROUTE, {"topic": topic_id, "region": region_id})
    if row is None:
        raise ValidationError(f"no route for topic {topic_id} (nor its parents); add one to "
                              "topic_routes", field="topic_id")
    return int(row["group_id"])
