-- Issue 15 §3 and §4: email fields kept with the message, email suppressions, media on the timeline.
-- The email-only send fields (subject, html, from_name, reply_to, cc, bcc) travel together as one
-- jsonb value: null for SMS/MMS, read whole by the provider call and the representation.
ALTER TABLE "messages" ADD COLUMN IF NOT EXISTS "email" jsonb;--> statement-breakpoint
-- Addresses SendGrid reported as bouncing, dropped, marked as spam or unsubscribed: a send to one
-- fails at once without a provider call, as SMS opt-outs do. Stored lower-cased, whole address.
CREATE TABLE IF NOT EXISTS "email_suppressions" (
	"address" text PRIMARY KEY NOT NULL,
	"reason" text NOT NULL,
	"detail" text,
	"provider_event_id" text,
	"message_id" uuid,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "email_suppressions_reason_ck" CHECK (reason in ('bounce', 'dropped', 'spamreport', 'unsubscribe', 'group_unsubscribe'))
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "email_suppressions_created_idx" ON "email_suppressions" USING btree ("created_at" desc, "address");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "opt_outs_recipient_idx" ON "opt_outs" USING btree ("recipient");--> statement-breakpoint
ALTER TABLE "message_events" DROP CONSTRAINT IF EXISTS "message_events_type_ck";--> statement-breakpoint
ALTER TABLE "message_events" ADD CONSTRAINT "message_events_type_ck" CHECK (type in ('created', 'received', 'enqueued', 'enqueue_failed', 'attempt', 'retry_scheduled', 'status_changed', 'callback_received', 'retry_requested', 'redriven', 'dead_lettered', 'webhook_attempt', 'scheduled', 'canceled', 'media_fetch'));
