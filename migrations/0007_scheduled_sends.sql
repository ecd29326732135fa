-- Scheduled sends and cancel (issue 15 §2): `send_at` on the message, the statuses `scheduled`
-- and `canceled`, their timeline events, and the index the sweep's safety pass uses to find
-- scheduled messages whose time has passed. created_after/created_before on the list are served
-- by messages_list_idx (created_at desc, id desc).
ALTER TABLE "messages" ADD COLUMN "send_at" timestamp (6) with time zone;--> statement-breakpoint
ALTER TABLE "messages" DROP CONSTRAINT "messages_status_ck";--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_status_ck" CHECK (status in ('pending', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'retry', 'held', 'scheduled', 'canceled'));--> statement-breakpoint
ALTER TABLE "message_events" DROP CONSTRAINT "message_events_type_ck";--> statement-breakpoint
ALTER TABLE "message_events" ADD CONSTRAINT "message_events_type_ck" CHECK (type in ('created', 'received', 'enqueued', 'enqueue_failed', 'attempt', 'retry_scheduled', 'status_changed', 'callback_received', 'retry_requested', 'redriven', 'dead_lettered', 'webhook_attempt', 'scheduled', 'canceled'));--> statement-breakpoint
CREATE INDEX "messages_scheduled_idx" ON "messages" USING btree ("next_attempt_at") WHERE status = 'scheduled';
