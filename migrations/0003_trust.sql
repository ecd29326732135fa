CREATE TABLE "send_fences" (
	"message_id" uuid PRIMARY KEY NOT NULL,
	"abandoned" boolean DEFAULT false NOT NULL,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" DROP CONSTRAINT "messages_status_ck";--> statement-breakpoint
ALTER TABLE "messages" DROP CONSTRAINT "messages_attempts_ck";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "message_id" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "claim_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "ambiguous_windows" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_ambiguous_idx" ON "messages" USING btree ("to_address") WHERE ambiguous_attempt and provider_message_id is null;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_status_ck" CHECK (status in ('pending', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'retry', 'held'));--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_attempts_ck" CHECK (attempts >= 0 and claim_seq >= 0);--> statement-breakpoint
-- Rows claimed by code that fenced on attempts carry their fence over into the new column.
UPDATE "messages" SET "claim_seq" = "attempts";
