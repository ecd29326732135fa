CREATE TABLE "conversations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"participant_from" text NOT NULL,
	"participant_to" text NOT NULL,
	"channel_type" text NOT NULL,
	"type" text NOT NULL,
	"direct_key" text,
	"status" text DEFAULT 'active' NOT NULL,
	"title" text,
	"last_message_at" timestamp (6) with time zone,
	"message_count" integer DEFAULT 0 NOT NULL,
	"unread_count" integer DEFAULT 0 NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversations_channel_type_ck" CHECK (channel_type in ('sms', 'mms', 'email')),
	CONSTRAINT "conversations_type_ck" CHECK (type in ('direct', 'thread')),
	CONSTRAINT "conversations_status_ck" CHECK (status in ('active', 'archived', 'closed')),
	CONSTRAINT "conversations_direct_key_ck" CHECK ((type = 'direct') = (direct_key is not null)),
	CONSTRAINT "conversations_title_ck" CHECK (title is null or char_length(title) <= 255),
	CONSTRAINT "conversations_counts_ck" CHECK (message_count >= 0 and unread_count >= 0 and unread_count <= message_count)
);
--> statement-breakpoint
CREATE TABLE "dead_letters" (
	"message_id" uuid PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"attempts" integer NOT NULL,
	"error_class" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"dead_lettered_at" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"response_status" integer,
	"response_body" text,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp (6) with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_scope_key_pk" PRIMARY KEY("scope","key")
);
--> statement-breakpoint
CREATE TABLE "message_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"message_id" uuid NOT NULL,
	"type" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "message_events_type_ck" CHECK (type in ('created', 'received', 'enqueued', 'enqueue_failed', 'attempt', 'retry_scheduled', 'status_changed', 'callback_received', 'retry_requested', 'redriven', 'dead_lettered'))
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" uuid PRIMARY KEY NOT NULL,
	"conversation_id" uuid NOT NULL,
	"parent_id" uuid,
	"provider" text NOT NULL,
	"provider_message_id" text,
	"direction" text NOT NULL,
	"status" text NOT NULL,
	"type" text NOT NULL,
	"from_address" text NOT NULL,
	"to_address" text NOT NULL,
	"body" text,
	"attachments" text[] DEFAULT '{}'::text[] NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"segments" integer,
	"attempts" integer DEFAULT 0 NOT NULL,
	"error_code" text,
	"error_message" text,
	"error_class" text,
	"next_attempt_at" timestamp (6) with time zone,
	"read_at" timestamp (6) with time zone,
	"sent_at" timestamp (6) with time zone,
	"delivered_at" timestamp (6) with time zone,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "messages_type_ck" CHECK (type in ('sms', 'mms', 'email')),
	CONSTRAINT "messages_status_ck" CHECK (status in ('pending', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'retry')),
	CONSTRAINT "messages_direction_ck" CHECK (direction in ('outbound', 'inbound')),
	CONSTRAINT "messages_provider_ck" CHECK (provider in ('twilio', 'sendgrid')),
	CONSTRAINT "messages_attempts_ck" CHECK (attempts >= 0)
);
--> statement-breakpoint
CREATE TABLE "processed_webhook_events" (
	"provider" text NOT NULL,
	"event_key" text NOT NULL,
	"kind" text NOT NULL,
	"message_id" uuid,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "processed_webhook_events_provider_event_key_pk" PRIMARY KEY("provider","event_key")
);
--> statement-breakpoint
ALTER TABLE "dead_letters" ADD CONSTRAINT "dead_letters_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_events" ADD CONSTRAINT "message_events_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_parent_id_messages_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."messages"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "conversations_direct_key_uq" ON "conversations" USING btree ("direct_key") WHERE "conversations"."type" = 'direct';--> statement-breakpoint
CREATE INDEX "conversations_list_idx" ON "conversations" USING btree ("last_message_at" desc nulls last,"created_at" desc,"id");--> statement-breakpoint
CREATE INDEX "conversations_participant_from_idx" ON "conversations" USING btree ("participant_from");--> statement-breakpoint
CREATE INDEX "conversations_participant_to_idx" ON "conversations" USING btree ("participant_to");--> statement-breakpoint
CREATE INDEX "dead_letters_list_idx" ON "dead_letters" USING btree ("dead_lettered_at" desc,"message_id");--> statement-breakpoint
CREATE INDEX "idempotency_keys_expires_idx" ON "idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "message_events_timeline_idx" ON "message_events" USING btree ("message_id","created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "messages_provider_message_uq" ON "messages" USING btree ("provider","provider_message_id") WHERE "messages"."provider_message_id" is not null;--> statement-breakpoint
CREATE INDEX "messages_list_idx" ON "messages" USING btree ("created_at" desc,"id" desc);--> statement-breakpoint
CREATE INDEX "messages_conversation_idx" ON "messages" USING btree ("conversation_id","created_at" desc,"id" desc);--> statement-breakpoint
CREATE INDEX "messages_parent_idx" ON "messages" USING btree ("parent_id") WHERE "messages"."parent_id" is not null;--> statement-breakpoint
CREATE INDEX "messages_in_flight_idx" ON "messages" USING btree ("status","updated_at") WHERE status in ('pending', 'queued', 'sending', 'retry');--> statement-breakpoint
CREATE INDEX "messages_unread_idx" ON "messages" USING btree ("conversation_id") WHERE direction = 'inbound' and read_at is null;