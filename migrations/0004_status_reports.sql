-- Provider status reports (Twilio status callbacks, SendGrid events) applied in one statement per
-- delivery, however many reports it carries: a SendGrid batch of hundreds of events is one round
-- trip and one transaction, and reports about one message apply one after another, in order, each
-- deciding on the status the previous one left. Per report: the message row is locked first, then
-- the dedupe key is claimed, then the forward-only rule decides whether the status moves.
-- `callback_received` is recorded for every first-seen report, `status_changed` only when applied.
-- An unmatched report stores nothing, so a redelivery after the message appears still applies.
--
-- reports: [{provider, kind, key, provider_status, provider_event_id, target, no_target_reason,
--            error_code, error_message, event_time, message_id, provider_ids, id_only}]
--   message_id      our id, when the report carries it (Twilio's callback URL, SendGrid custom_args)
--   provider_ids    provider message ids the report may name (SendGrid: sg_message_id and its prefixes)
--   id_only         match on message_id alone, the stored provider id (if any) agreeing with provider_ids[0]
-- allowed: [{"from": ..., "to": ...}, ...], the status moves the service allows (src/services/status.ts);
--   objects, not pairs: jsonb containment ignores the order inside an array
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
      WHERE m.id = found_id;
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
