-- CRM source schema (database "crm", schema public).
--
-- Every table is a CDC source (topic crm.public.<table>). REPLICA IDENTITY is chosen per table:
--   FULL    where the old row matters downstream (state machines whose transitions are counted:
--           appeals, tickets) or where the table is a tiny, rarely changed dimension whose full
--           before-image costs nothing and makes audits of reference changes possible;
--   DEFAULT (primary key only) for very large or append-only tables (customers, contacts,
--           ticket_history, answers, sla_reminders): the key is enough for upserts/tombstones
--           and a full before-image would double the WAL of the hottest tables for no reader.

-- ------------------------------------------------------------------ calendars and geography
CREATE TABLE business_calendars (
    calendar_id   smallint PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    timezone      text NOT NULL,                 -- IANA zone; business hours are wall-clock
    day_start     time NOT NULL DEFAULT '09:00',
    day_end       time NOT NULL DEFAULT '18:00',
    weekend_isodow smallint[] NOT NULL DEFAULT '{6,7}',
    CHECK (day_start < day_end)
);
ALTER TABLE business_calendars REPLICA IDENTITY FULL;
COMMENT ON TABLE business_calendars IS
    'Working hours per territory for SLA clocks. REPLICA IDENTITY FULL: tiny dimension.';

CREATE TABLE calendar_holidays (
    calendar_id smallint NOT NULL REFERENCES business_calendars,
    holiday     date NOT NULL,
    name        text NOT NULL DEFAULT '',
    PRIMARY KEY (calendar_id, holiday)
);
ALTER TABLE calendar_holidays REPLICA IDENTITY FULL;
COMMENT ON TABLE calendar_holidays IS
    'Non-working days per calendar. REPLICA IDENTITY FULL: tiny dimension.';

CREATE TABLE regions (
    region_id   smallint PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL,
    timezone    text NOT NULL,
    calendar_id smallint NOT NULL REFERENCES business_calendars
);
ALTER TABLE regions REPLICA IDENTITY FULL;
COMMENT ON TABLE regions IS 'Regions (top level of territories). REPLICA IDENTITY FULL: tiny.';

CREATE TABLE territories (
    territory_id int PRIMARY KEY,
    region_id    smallint NOT NULL REFERENCES regions,
    code         text NOT NULL UNIQUE,
    name         text NOT NULL
);
CREATE INDEX territories_region_idx ON territories (region_id);
ALTER TABLE territories REPLICA IDENTITY FULL;
COMMENT ON TABLE territories IS 'Sales territories inside a region. REPLICA IDENTITY FULL: small.';

CREATE TABLE stores (
    store_id     int PRIMARY KEY,
    territory_id int NOT NULL REFERENCES territories,
    code         text NOT NULL UNIQUE,
    name         text NOT NULL
);
CREATE INDEX stores_territory_idx ON stores (territory_id);
ALTER TABLE stores REPLICA IDENTITY FULL;
COMMENT ON TABLE stores IS
    'Stores: the customers'' locations (~16k). REPLICA IDENTITY FULL: small, rarely changed.';

-- ------------------------------------------------------------------ organisation
CREATE TABLE queues (
    queue_id smallint PRIMARY KEY,
    code     text NOT NULL UNIQUE,
    name     text NOT NULL
);
ALTER TABLE queues REPLICA IDENTITY FULL;
COMMENT ON TABLE queues IS 'First-line queues appeals land in. REPLICA IDENTITY FULL: tiny.';

CREATE TABLE specialist_groups (
    group_id smallint PRIMARY KEY,
    code     text NOT NULL UNIQUE,
    name     text NOT NULL
);
ALTER TABLE specialist_groups REPLICA IDENTITY FULL;
COMMENT ON TABLE specialist_groups IS
    'Second-line groups tickets are routed to. REPLICA IDENTITY FULL: tiny.';

CREATE TABLE employees (
    employee_id int PRIMARY KEY,
    login       text NOT NULL UNIQUE,
    full_name   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('operator', 'supervisor', 'engineer', 'specialist')),
    group_id    smallint REFERENCES specialist_groups,   -- engineers/specialists
    queue_id    smallint REFERENCES queues,              -- operators/supervisors
    region_id   smallint REFERENCES regions,
    active      boolean NOT NULL DEFAULT true
);
CREATE INDEX employees_group_idx ON employees (group_id) WHERE group_id IS NOT NULL;
ALTER TABLE employees REPLICA IDENTITY FULL;
COMMENT ON TABLE employees IS
    'Operators, supervisors, engineers, specialists. REPLICA IDENTITY FULL: small; group and '
    'activity changes are audited downstream from the before-image.';

CREATE TABLE topics (
    topic_id        int PRIMARY KEY,
    code            text NOT NULL UNIQUE,
    name            text NOT NULL,
    parent_topic_id int REFERENCES topics,
    active          boolean NOT NULL DEFAULT true
);
ALTER TABLE topics REPLICA IDENTITY FULL;
COMMENT ON TABLE topics IS 'Appeal topics (a tree). REPLICA IDENTITY FULL: small.';

CREATE TABLE topic_routes (
    route_id  int PRIMARY KEY,
    topic_id  int NOT NULL REFERENCES topics,
    region_id smallint REFERENCES regions,          -- NULL: any region
    group_id  smallint NOT NULL REFERENCES specialist_groups
);
CREATE UNIQUE INDEX topic_routes_topic_region_uq
    ON topic_routes (topic_id, COALESCE(region_id, -1));
ALTER TABLE topic_routes REPLICA IDENTITY FULL;
COMMENT ON TABLE topic_routes IS
    'Ticket routing: topic (and optionally region) -> specialist group. Lookup walks up the '
    'topic tree. REPLICA IDENTITY FULL: small.';

CREATE TABLE sla_policies (
    ticket_type           text PRIMARY KEY CHECK (ticket_type IN ('task', 'claim')),
    resolve_minutes       int NOT NULL CHECK (resolve_minutes > 0),   -- business minutes
    remind_before_minutes int NOT NULL CHECK (remind_before_minutes >= 0)
);
ALTER TABLE sla_policies REPLICA IDENTITY FULL;
COMMENT ON TABLE sla_policies IS
    'SLA per ticket type in business minutes of the ticket''s region calendar. FULL: tiny.';

-- ------------------------------------------------------------------ customers
CREATE TABLE customers (
    customer_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    phone       text,                    -- normalised E.164 digits with '+': the identity key
    full_name   text NOT NULL DEFAULT '',
    store_id    int REFERENCES stores,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- tens of millions of rows: only the indexes lookups need (identity by phone, by store).
CREATE UNIQUE INDEX customers_phone_uq ON customers (phone) WHERE phone IS NOT NULL;
CREATE INDEX customers_store_idx ON customers (store_id) WHERE store_id IS NOT NULL;
COMMENT ON TABLE customers IS
    'One row per person; phone (normalised) is the identity shared with dialer leads. '
    'REPLICA IDENTITY DEFAULT: tens of millions of rows, the key suffices downstream.';

CREATE TABLE contacts (
    contact_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    channel     text NOT NULL
        CHECK (channel IN ('call', 'chat', 'email', 'whatsapp', 'telegram', 'viber', 'web')),
    address     text NOT NULL,           -- phone, e-mail, messenger id, web account
    created_at  timestamptz NOT NULL,
    UNIQUE (channel, address)
);
CREATE INDEX contacts_customer_idx ON contacts (customer_id);
COMMENT ON TABLE contacts IS
    'How to reach a customer per channel; (channel, address) resolves the customer of an '
    'incoming appeal. REPLICA IDENTITY DEFAULT: large, effectively append-only.';

-- ------------------------------------------------------------------ appeals
CREATE TABLE appeals (
    appeal_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id       bigint NOT NULL REFERENCES customers,
    contact_id        bigint NOT NULL REFERENCES contacts,
    channel           text NOT NULL
        CHECK (channel IN ('call', 'chat', 'email', 'whatsapp', 'telegram', 'viber', 'web')),
    status            text NOT NULL
        CHECK (status IN ('open', 'in_progress', 'resolved', 'closed', 'linked')),
    queue_id          smallint NOT NULL REFERENCES queues,
    region_id         smallint REFERENCES regions,
    topic_id          int NOT NULL REFERENCES topics,
    operator_id       int REFERENCES employees,
    linked_appeal_id  bigint REFERENCES appeals,   -- the first appeal of the case (repeat)
    external_ref      text,                        -- e.g. the dialer's call id (idempotency)
    subject           text NOT NULL DEFAULT '',
    opened_at         timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    reopened_count    int NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL,
    UNIQUE (appeal_id, channel),                   -- target of answers' channel-of-origin FK
    CHECK (linked_appeal_id IS NULL OR linked_appeal_id <> appeal_id),
    CHECK ((status = 'linked') = (linked_appeal_id IS NOT NULL))
);
-- repeat detection: latest appeals of one customer on one topic
CREATE INDEX appeals_customer_topic_idx ON appeals (customer_id, topic_id, opened_at DESC);
CREATE INDEX appeals_opened_idx ON appeals (opened_at);
CREATE INDEX appeals_linked_idx ON appeals (linked_appeal_id) WHERE linked_appeal_id IS NOT NULL;
CREATE INDEX appeals_open_idx ON appeals (queue_id) WHERE status IN ('open', 'in_progress');
CREATE UNIQUE INDEX appeals_external_ref_uq ON appeals (external_ref)
    WHERE external_ref IS NOT NULL;
ALTER TABLE appeals REPLICA IDENTITY FULL;
COMMENT ON TABLE appeals IS
    'Customer contacts through any channel; a repeat on the same topic within the window is '
    'linked (status linked, linked_appeal_id = first appeal). REPLICA IDENTITY FULL: status '
    'transitions (reopen, resolve) are counted from the before-image; ~40k rows/day is cheap.';

-- ------------------------------------------------------------------ tickets
CREATE TABLE tickets (
    ticket_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    appeal_id      bigint NOT NULL REFERENCES appeals,
    ticket_type    text NOT NULL REFERENCES sla_policies,
    topic_id       int NOT NULL REFERENCES topics,
    region_id      smallint REFERENCES regions,
    group_id       smallint NOT NULL REFERENCES specialist_groups,
    assignee_id    int REFERENCES employees,
    status         text NOT NULL CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
    sla_due_at     timestamptz NOT NULL,
    sla_remind_at  timestamptz NOT NULL,
    reminded_at    timestamptz,
    created_at     timestamptz NOT NULL,
    resolved_at    timestamptz,
    closed_at      timestamptz,
    reopened_count int NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX tickets_appeal_idx ON tickets (appeal_id);
CREATE INDEX tickets_group_open_idx ON tickets (group_id) WHERE status IN ('open', 'in_progress');
CREATE INDEX tickets_assignee_idx ON tickets (assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_remind_idx ON tickets (sla_remind_at)
    WHERE reminded_at IS NULL AND status IN ('open', 'in_progress');
ALTER TABLE tickets REPLICA IDENTITY FULL;
COMMENT ON TABLE tickets IS
    'Trouble tickets (task or claim) routed by topic to a group, SLA due by type. REPLICA '
    'IDENTITY FULL: reassignments and reopens are visible in the before-image as a cross-check '
    'of ticket_history.';

CREATE TABLE ticket_history (
    history_id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES tickets,
    seq           int NOT NULL,                 -- 1, 2, 3 ... per ticket: the order of events
    event         text NOT NULL CHECK (event IN ('created', 'assigned', 'status')),
    from_group_id smallint REFERENCES specialist_groups,
    to_group_id   smallint REFERENCES specialist_groups,
    from_assignee_id int REFERENCES employees,
    to_assignee_id   int REFERENCES employees,
    from_status   text,
    to_status     text,
    actor_id      int REFERENCES employees,
    note          text NOT NULL DEFAULT '',
    at            timestamptz NOT NULL,
    UNIQUE (ticket_id, seq)
);
COMMENT ON TABLE ticket_history IS
    'Every assignment and status change of a ticket, ordered by seq. Append-only: REPLICA '
    'IDENTITY DEFAULT.';

CREATE TABLE sla_reminders (
    reminder_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets,
    employee_id int REFERENCES employees,      -- the assignee; NULL: the whole group
    group_id    smallint NOT NULL REFERENCES specialist_groups,
    sla_due_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (ticket_id, sla_due_at)             -- one reminder per SLA deadline
);
COMMENT ON TABLE sla_reminders IS
    'Reminders sent when a ticket''s SLA nears. Append-only: REPLICA IDENTITY DEFAULT.';

-- ------------------------------------------------------------------ answers
CREATE TABLE answers (
    answer_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    appeal_id   bigint NOT NULL,
    channel     text NOT NULL,
    address     text NOT NULL,                 -- the contact the appeal came from
    employee_id int REFERENCES employees,
    body        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    -- the database itself refuses an answer through any channel but the appeal's own
    FOREIGN KEY (appeal_id, channel) REFERENCES appeals (appeal_id, channel)
);
CREATE INDEX answers_appeal_idx ON answers (appeal_id);
CREATE INDEX answers_queued_idx ON answers (created_at) WHERE status = 'queued';
COMMENT ON TABLE answers IS
    'Outgoing answers (an outbox), always through the channel of origin of the appeal. '
    'REPLICA IDENTITY DEFAULT: only status/sent_at change and the after-image carries them.';
