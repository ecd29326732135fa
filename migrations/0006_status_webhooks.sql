-- Status webhooks to the API user (Standard Webhooks). An outbox: every status change of a message
-- that an API user can subscribe to inserts one `webhook_events` row per target (each enabled
-- endpoint that wants the event type, and the message's own `status_callback`) in the same
-- statement or transaction as the change itself, so an event is never lost and never invented.
-- The WebhookWorker Durable Object delivers due rows and records every attempt.
CREATE TABLE "webhook_endpoints" (
	"id" uuid PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"description" text,
	"events" text[] DEFAULT '{}'::text[] NOT NULL,
	-- `whsec_` + base64; kept as-is because signing needs the key itself (HMAC), not a hash of it
	"secret" text NOT NULL,
	"failing_since" timestamp (6) with time zone,
	"disabled_at" timestamp (6) with time zone,
	"disabled_reason" text,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_endpoints_events_ck" CHECK (events <@ ARRAY['message.sent', 'message.delivered', 'message.undelivered', 'message.failed', 'message.canceled', 'message.received']::text[])
);
--> statement-breakpoint
CREATE TABLE "webhook_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"message_id" uuid NOT NULL,
	"endpoint_id" uuid,
	"url" text,
	"type" text NOT NULL,
	"sequence" bigint NOT NULL,
	"message" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp (6) with time zone,
	"last_attempt_at" timestamp (6) with time zone,
	"last_status_code" integer,
	"last_error" text,
	"last_response" text,
	"delivered_at" timestamp (6) with time zone,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_events_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE cascade,
	CONSTRAINT "webhook_events_endpoint_id_webhook_endpoints_id_fk" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE cascade,
	CONSTRAINT "webhook_events_target_ck" CHECK ((endpoint_id IS NULL) <> (url IS NULL)),
	CONSTRAINT "webhook_events_status_ck" CHECK (status in ('pending', 'delivered', 'failed'))
);
--> statement-breakpoint
CREATE INDEX "webhook_events_due_idx" ON "webhook_events" USING btree ("next_attempt_at") WHERE status = 'pending';
--> statement-breakpoint
CREATE INDEX "webhook_events_message_idx" ON "webhook_events" USING btree ("message_id","created_at");
--> statement-breakpoint
CREATE INDEX "webhook_events_endpoint_idx" ON "webhook_events" USING btree ("endpoint_id","created_at") WHERE endpoint_id IS NOT NULL;
--> statement-breakpoint
-- `sequence` in every event body: drawn while the message row is locked by its change, so it grows
-- for each message in the order of its changes (not contiguous: one sequence serves every message)
CREATE SEQUENCE IF NOT EXISTS "webhook_event_seq";
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "status_callback" text;
--> statement-breakpoint
ALTER TABLE "message_events" DROP CONSTRAINT "message_events_type_ck";
--> statement-breakpoint
ALTER TABLE "message_events" ADD CONSTRAINT "message_events_type_ck" CHECK (type in ('created', 'received', 'enqueued', 'enqueue_failed', 'attempt', 'retry_scheduled', 'status_changed', 'callback_received', 'retry_requested', 'redriven', 'dead_lettered', 'webhook_attempt'));
--> statement-breakpoint
-- Who gets an event: every enabled endpoint subscribed to its type (no list = every type), and the
-- message's status_callback.
CREATE OR REPLACE FUNCTION webhook_targets(event_type text, status_callback text)
RETURNS TABLE (endpoint_id uuid, url text)
LANGUAGE sql STABLE AS $$
  SELECT e.id, NULL::text FROM webhook_endpoints e
   WHERE e.disabled_at IS NULL AND (cardinality(e.events) = 0 OR event_type = ANY (e.events))
  UNION ALL
  SELECT NULL::uuid, status_callback WHERE status_callback IS NOT NULL
$$;
--> statement-breakpoint
-- One event about a message, `msg` being the message row as it stands after the change
-- (to_jsonb(messages.*)): its outbox rows, one per target, due now. Returns how many.
-- Call it in the statement or transaction that records the change.
CREATE OR REPLACE FUNCTION emit_message_webhook(msg jsonb, event_type text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  seq bigint := nextval('webhook_event_seq');
  n integer;
BEGIN
  INSERT INTO webhook_events (id, message_id, endpoint_id, url, type, sequence, message, next_attempt_at)
  SELECT gen_random_uuid(), (msg->>'id')::uuid, t.endpoint_id, t.url, event_type, seq, msg, now()
    FROM webhook_targets(event_type, msg->>'status_callback') t;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
--> statement-breakpoint
-- apply_status_reports (migration 0004), now also emitting the status webhook of each applied report.
CREATE OR REPLACE FUNCTION apply_status_reports(reports jsonb, allowed jsonb)
RETURNS TABLE (idx integer, message_id uuid, outcome text, reason text, to_status text, message_type text)
LANGUAGE plpgsql AS $$
DECLARE
  r jsonb;
  i integer := -1;
  ours uuid;
  ids text[];
  found_id uuid;
  found_type text;
  current_status text;
  target text;
  decision text;
  first_seen boolean;
  changed jsonb;
BEGIN
  FOR r IN SELECT value FROM jsonb_array_elements(reports) LOOP
    i := i + 1;
    ours := (r->>'message_id')::uuid;
    ids := ARRAY(SELECT jsonb_array_elements_text(coalesce(r->'provider_ids', '[]'::jsonb)));
    target := r->>'target';
    SELECT m.id, m.type, m.status INTO found_id, found_type, current_status
      FROM messages m
     WHERE m.provider = r->>'provider' AND m.direction = 'outbound'
       AND (CASE WHEN (r->>'id_only')::boolean
                 THEN m.id = ours AND (m.provider_message_id IS NULL OR m.provider_message_id = ids[1])
                 ELSE m.id = ours OR m.provider_message_id = ANY (ids) END)
     ORDER BY (m.id = ours) DESC NULLS LAST, m.created_at, m.id
     LIMIT 1
     FOR UPDATE;
    IF found_id IS NULL THEN
      idx := i; message_id := NULL; outcome := 'unmatched'; reason := NULL; to_status := NULL; message_type := NULL;
      RETURN NEXT;
      CONTINUE;
    END IF;

    INSERT INTO processed_webhook_events (provider, event_key, kind, message_id)
    VALUES (r->>'provider', r->>'key', r->>'kind', found_id)
    ON CONFLICT DO NOTHING;
    first_seen := FOUND;
    IF NOT first_seen THEN
      idx := i; message_id := found_id; outcome := 'duplicate'; reason := NULL; to_status := NULL; message_type := found_type;
      RETURN NEXT;
      CONTINUE;
    END IF;

    decision := CASE
      WHEN target IS NULL THEN r->>'no_target_reason'
      WHEN current_status = target THEN 'no_status_change'
      WHEN allowed @> jsonb_build_array(jsonb_build_object('from', current_status, 'to', target)) THEN NULL
      ELSE 'out_of_order' END;

    IF decision IS NULL THEN
      UPDATE messages m SET
        status = target,
        -- never a provider id that another message already holds
        provider_message_id = coalesce(m.provider_message_id,
          (SELECT p FROM unnest(ids[1:1]) p
            WHERE (r->>'id_only')::boolean
              AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.provider = m.provider AND o.provider_message_id = p))),
        sent_at = CASE WHEN target = 'sent' THEN coalesce(m.sent_at, now()) ELSE m.sent_at END,
        delivered_at = CASE WHEN target = 'delivered' THEN coalesce(m.delivered_at, (r->>'event_time')::timestamptz, now()) ELSE m.delivered_at END,
        error_code = CASE WHEN target IN ('undelivered', 'failed') THEN r->>'error_code' ELSE m.error_code END,
        error_message = CASE WHEN target IN ('undelivered', 'failed') THEN r->>'error_message' ELSE m.error_message END,
        next_attempt_at = CASE WHEN target IN ('sent', 'delivered', 'undelivered', 'failed') THEN NULL ELSE m.next_attempt_at END,
        updated_at = now()
      WHERE m.id = found_id
      RETURNING to_jsonb(m.*) INTO changed;
      -- the API user's status webhook, in the same transaction as the change (migration 0006)
      IF target IN ('sent', 'delivered', 'undelivered', 'failed') THEN
        PERFORM emit_message_webhook(changed, 'message.' || target);
      END IF;
    END IF;

    -- clock_timestamp(): several reports in one transaction keep their order on the timeline
    INSERT INTO message_events (id, message_id, type, data, created_at)
    VALUES (gen_random_uuid(), found_id, 'callback_received',
            jsonb_build_object('provider', r->>'provider', 'provider_status', r->>'provider_status',
                               'provider_event_id', r->>'provider_event_id', 'applied', decision IS NULL, 'reason', decision),
            clock_timestamp());
    IF decision IS NULL THEN
      INSERT INTO message_events (id, message_id, type, data, created_at)
      VALUES (gen_random_uuid(), found_id, 'status_changed', jsonb_build_object('from', current_status, 'to', target, 'source', 'callback'), clock_timestamp());
    END IF;

    idx := i; message_id := found_id; outcome := CASE WHEN decision IS NULL THEN 'applied' ELSE 'ignored' END;
    reason := decision; to_status := CASE WHEN decision IS NULL THEN target END; message_type := found_type;
    RETURN NEXT;
  END LOOP;
END $$;
