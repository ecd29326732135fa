-- Identical twins (same provider, pair, type, text and media count) whose attempts were both cut
-- off are paired with the provider's copies by reconcile in time order, and can be given each
-- other's SIDs. Their status callbacks name our message id in the URL and the real SID, so an
-- `id_only` report matched neither and both stayed `sent` for good (found by the chaos suite).
-- A report whose named message holds another SID now applies to the identical twin that holds the
-- report's SID: twins are interchangeable, and a message's status follows the SID it holds.
-- The callback_received event records the message the report named (`named_message_id`).
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
  via_twin boolean;
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
    via_twin := false;
    IF found_id IS NULL AND (r->>'id_only')::boolean AND ids[1] IS NOT NULL THEN
      SELECT m.id, m.type, m.status INTO found_id, found_type, current_status
        FROM messages m JOIN messages named ON named.id = ours
       WHERE m.provider = r->>'provider' AND m.direction = 'outbound' AND m.provider_message_id = ids[1] AND m.id <> ours
         AND named.provider = m.provider AND named.direction = 'outbound' AND named.type = m.type
         AND named.to_address = m.to_address AND named.from_address = m.from_address
         AND named.body IS NOT DISTINCT FROM m.body AND cardinality(named.attachments) = cardinality(m.attachments)
       FOR UPDATE OF m;
      via_twin := found_id IS NOT NULL;
    END IF;
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
                               'provider_event_id', r->>'provider_event_id', 'applied', decision IS NULL, 'reason', decision)
              || CASE WHEN via_twin THEN jsonb_build_object('named_message_id', ours) ELSE '{}'::jsonb END,
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
