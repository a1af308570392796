-- The dialer's operational schema (database "dialer", schema public).
--
-- Every table has a primary key: the CDC relay keys Kafka messages and ClickHouse
-- ReplacingMergeTree rows by it.
--
-- REPLICA IDENTITY, chosen per table (these tables are CDC sources):
--   FULL    small, slowly changing tables whose *previous* state matters downstream
--           (campaign stopped -> started, operator ready -> paused, callback reassigned from
--           operator A to B). The before-image makes those transitions auditable from the change
--           stream alone, and the WAL cost is negligible at their volume.
--   DEFAULT (primary key) for the high-volume tables (leads, call_attempts,
--           operator_status_log, icp_steps, hopper_ticks): the after-image carries the whole
--           row, downstream keeps the latest version by key, and a FULL before-image of millions
--           of lead updates would double the WAL for no reporting value.

CREATE TABLE calendars (
    calendar_id  serial PRIMARY KEY,
    name         text NOT NULL UNIQUE
);
ALTER TABLE calendars REPLICA IDENTITY FULL;

-- A holiday is a local calendar day: it is compared with the date in the lead's own timezone.
CREATE TABLE holidays (
    calendar_id  int  NOT NULL REFERENCES calendars ON DELETE CASCADE,
    day          date NOT NULL,
    name         text NOT NULL DEFAULT '',
    PRIMARY KEY (calendar_id, day)
);
ALTER TABLE holidays REPLICA IDENTITY FULL;

CREATE TABLE campaigns (
    campaign_id            serial PRIMARY KEY,
    name                   text NOT NULL UNIQUE,
    strategy               text NOT NULL CHECK (strategy IN
                               ('predictive', 'progressive', 'preview', 'personal', 'callback')),
    status                 text NOT NULL DEFAULT 'active'
                               CHECK (status IN ('active', 'paused', 'stopped')),
    status_changed_at      timestamptz NOT NULL DEFAULT '-infinity',
    -- local wall-clock window in the lead's timezone; start > end means it spans midnight
    window_start           time NOT NULL DEFAULT '09:00',
    window_end             time NOT NULL DEFAULT '21:00',
    default_timezone       text NOT NULL DEFAULT 'UTC',
    calendar_id            int REFERENCES calendars,
    max_attempts           int NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    abandon_target         numeric(5, 4) NOT NULL DEFAULT 0.03
                               CHECK (abandon_target >= 0 AND abandon_target <= 1),
    max_dial_ratio         numeric(5, 2) NOT NULL DEFAULT 3.0 CHECK (max_dial_ratio >= 1),
    hopper_size            int NOT NULL DEFAULT 20000 CHECK (hopper_size > 0),
    callback_reassign_after interval NOT NULL DEFAULT '15 minutes',
    callback_fallback      text NOT NULL DEFAULT 'operator'
                               CHECK (callback_fallback IN ('operator', 'common')),
    caller_id              text NOT NULL DEFAULT '',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE campaigns REPLICA IDENTITY FULL;

-- "The first matching rule writes the lead's next_call_at": lowest priority number wins.
CREATE TABLE scheduler_rules (
    rule_id       serial PRIMARY KEY,
    campaign_id   int  NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    priority      int  NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN
                      ('answered', 'busy', 'no_answer', 'failed', 'machine', 'abandoned', '*')),
    min_attempts  int  NOT NULL DEFAULT 0,
    max_attempts  int,
    action        text NOT NULL CHECK (action IN ('retry', 'close')),
    retry_after   interval NOT NULL DEFAULT '0',
    UNIQUE (campaign_id, priority)
);
ALTER TABLE scheduler_rules REPLICA IDENTITY FULL;

-- Caller-ID routing: operator number > regional number (longest phone prefix) > campaign number.
CREATE TABLE caller_id_routes (
    route_id      serial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('operator', 'regional', 'campaign')),
    campaign_id   int REFERENCES campaigns ON DELETE CASCADE,
    operator_id   int,
    phone_prefix  text,
    caller_id     text NOT NULL,
    CHECK ((kind = 'operator') = (operator_id IS NOT NULL)),
    CHECK ((kind = 'regional') = (phone_prefix IS NOT NULL))
);
ALTER TABLE caller_id_routes REPLICA IDENTITY FULL;

CREATE TABLE operators (
    operator_id          serial PRIMARY KEY,
    login                text NOT NULL UNIQUE,
    name                 text NOT NULL DEFAULT '',
    status               text NOT NULL DEFAULT 'offline' CHECK (status IN
                             ('offline', 'ready', 'on_call', 'wrap_up', 'paused',
                              'waiting_unpause')),
    pause_reason         text,
    -- why the operator waits for unpause (durable: survives a service restart)
    wait_reason          text,
    status_since         timestamptz NOT NULL DEFAULT '-infinity',
    removed_at           timestamptz,
    CHECK ((status = 'paused') = (pause_reason IS NOT NULL)),
    CHECK ((status = 'waiting_unpause') = (wait_reason IS NOT NULL))
);
ALTER TABLE operators REPLICA IDENTITY FULL;

ALTER TABLE caller_id_routes
    ADD FOREIGN KEY (operator_id) REFERENCES operators ON DELETE CASCADE;

-- One row per status interval; ended_at is written when the next status starts.
CREATE TABLE operator_status_log (
    log_id       bigserial PRIMARY KEY,
    operator_id  int NOT NULL REFERENCES operators ON DELETE CASCADE,
    status       text NOT NULL,
    reason       text,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX operator_status_log_open ON operator_status_log (operator_id) WHERE ended_at IS NULL;
CREATE INDEX operator_status_log_started ON operator_status_log (started_at);

CREATE TABLE queues (
    queue_id     serial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    campaign_id  int REFERENCES campaigns ON DELETE CASCADE,
    direction    text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound'))
);
ALTER TABLE queues REPLICA IDENTITY FULL;

-- The queue penalty lives here: +10000 while the operator waits for unpause, so they get no
-- new predictive call while a reserved (callback) call is on its way to them.
CREATE TABLE queue_members (
    queue_id     int NOT NULL REFERENCES queues ON DELETE CASCADE,
    operator_id  int NOT NULL REFERENCES operators ON DELETE CASCADE,
    penalty      int NOT NULL DEFAULT 0,
    PRIMARY KEY (queue_id, operator_id)
);
ALTER TABLE queue_members REPLICA IDENTITY FULL;
CREATE INDEX queue_members_operator ON queue_members (operator_id);

CREATE TABLE buckets (
    bucket_id    serial PRIMARY KEY,
    campaign_id  int NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('common', 'personal')),
    operator_id  int REFERENCES operators ON DELETE SET NULL,
    name         text NOT NULL DEFAULT ''
);
ALTER TABLE buckets REPLICA IDENTITY FULL;
CREATE UNIQUE INDEX buckets_one_common ON buckets (campaign_id) WHERE kind = 'common';
CREATE UNIQUE INDEX buckets_one_personal ON buckets (campaign_id, operator_id)
    WHERE kind = 'personal';

CREATE TABLE leads (
    lead_id       bigserial PRIMARY KEY,
    campaign_id   int  NOT NULL REFERENCES campaigns,
    bucket_id     int  NOT NULL REFERENCES buckets,
    phone         text NOT NULL,
    timezone      text NOT NULL,          -- IANA name, e.g. Europe/Moscow
    status        text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'done', 'exhausted', 'dnc')),
    attempts      int  NOT NULL DEFAULT 0,
    next_call_at  timestamptz NOT NULL,
    locked_by     bigint,                 -- the call attempt that holds the lead
    locked_at     timestamptz,
    last_outcome  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- DEFAULT identity: see the header.
-- The batcher's access path: due leads of one campaign in next_call_at order. Partial, so that
-- closed and in-flight leads (most of the table after a while) are not in it.
CREATE INDEX leads_due ON leads (campaign_id, next_call_at)
    WHERE status = 'active' AND locked_by IS NULL;
CREATE INDEX leads_bucket ON leads (bucket_id);

CREATE TABLE callbacks (
    callback_id           bigserial PRIMARY KEY,
    lead_id               bigint REFERENCES leads ON DELETE SET NULL,
    campaign_id           int NOT NULL REFERENCES campaigns,
    operator_id           int REFERENCES operators ON DELETE SET NULL,   -- who agreed it
    assigned_operator_id  int REFERENCES operators ON DELETE SET NULL,   -- who must keep it
    agreed_at             timestamptz NOT NULL,
    next_call_at          timestamptz NOT NULL,   -- min(agreed time, schedule), fixed at creation
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'dialing', 'kept', 'late', 'missed', 'cancelled')),
    reason                text,
    reassigned_at         timestamptz,
    reassigned_to         text CHECK (reassigned_to IN ('operator', 'common')),
    attempt_id            bigint,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
ALTER TABLE callbacks REPLICA IDENTITY FULL;
-- one open callback per lead: a duplicate request reschedules the open one
CREATE UNIQUE INDEX callbacks_one_open ON callbacks (lead_id)
    WHERE status IN ('pending', 'dialing');
CREATE INDEX callbacks_open_operator ON callbacks (assigned_operator_id, next_call_at)
    WHERE status IN ('pending', 'dialing');

-- A deleted lead cannot be called back: its open callback is cancelled with the reason kept,
-- whoever deletes it (the service, an import job, a DBA by hand).
CREATE FUNCTION cancel_callbacks_of_deleted_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE callbacks SET status = 'cancelled', reason = 'lead_deleted',
                         updated_at = greatest(updated_at, now())
     WHERE lead_id = OLD.lead_id AND status IN ('pending', 'dialing');
    RETURN OLD;
END $$;
CREATE TRIGGER leads_cancel_callbacks BEFORE DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION cancel_callbacks_of_deleted_lead();

-- A lead moved to another campaign or out of its personal bucket by someone else than the
-- callback machinery loses its open callback (the move is an explicit supervisor decision).
-- The callback machinery marks its own moves with SET LOCAL dialer.callback_move = 'on'.
CREATE FUNCTION cancel_callbacks_of_moved_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('dialer.callback_move', true), '') <> 'on' THEN
        UPDATE callbacks SET status = 'cancelled', reason = 'lead_moved',
                             updated_at = greatest(updated_at, now())
         WHERE lead_id = NEW.lead_id AND status IN ('pending', 'dialing');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER leads_moved_cancel_callbacks AFTER UPDATE OF campaign_id, bucket_id ON leads
    FOR EACH ROW WHEN (OLD.campaign_id IS DISTINCT FROM NEW.campaign_id
                       OR OLD.bucket_id IS DISTINCT FROM NEW.bucket_id)
    EXECUTE FUNCTION cancel_callbacks_of_moved_lead();

-- One row per call attempt, updated through its life:
-- originated -> ringing -> answered|busy|no_answer|failed|machine -> queued -> connected
-- -> wrap_up -> closed (or abandoned when no operator took an answered call within 2 s).
CREATE TABLE call_attempts (
    attempt_id      bigserial PRIMARY KEY,
    direction       text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    campaign_id     int REFERENCES campaigns,
    lead_id         bigint,
    callback_id     bigint,
    queue_id        int,
    operator_id     int,
    strategy        text,
    phone           text NOT NULL,
    caller_id       text NOT NULL DEFAULT '',
    state           text NOT NULL CHECK (state IN
                        ('originated', 'ringing', 'answered', 'busy', 'no_answer', 'failed',
                         'machine', 'queued', 'connected', 'abandoned', 'wrap_up', 'closed')),
    outcome         text,
    disposition     text,
    originated_at   timestamptz NOT NULL,
    ringing_at      timestamptz,
    answered_at     timestamptz,
    queued_at       timestamptz,
    connected_at    timestamptz,
    ended_at        timestamptz,
    wrap_ended_at   timestamptz,
    closed_at       timestamptz,
    hold_seconds    int NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX call_attempts_campaign_time ON call_attempts (campaign_id, originated_at);
CREATE INDEX call_attempts_lead ON call_attempts (lead_id);
CREATE INDEX call_attempts_open ON call_attempts (state) WHERE state <> 'closed';

-- Interactive call processing: every request/answer step of an inbound call.
CREATE TABLE icp_steps (
    step_id       bigserial PRIMARY KEY,
    attempt_id    bigint NOT NULL,
    seq           int NOT NULL,
    requested_at  timestamptz NOT NULL,
    input_result  text NOT NULL DEFAULT '',
    http_status   int,
    latency_ms    int,
    response      jsonb,
    action        text NOT NULL,
    fallback      boolean NOT NULL,
    error         text,
    UNIQUE (attempt_id, seq)
);

-- Hopper depth per campaign at each batcher tick (a KPI: "hopper depth per campaign").
CREATE TABLE hopper_ticks (
    campaign_id  int NOT NULL,
    tick_at      timestamptz NOT NULL,
    selected     int NOT NULL,
    duration_ms  int NOT NULL,
    PRIMARY KEY (campaign_id, tick_at)
);
