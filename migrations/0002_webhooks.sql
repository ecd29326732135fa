CREATE TABLE "opt_outs" (
	"sender" text NOT NULL,
	"recipient" text NOT NULL,
	"keyword" text NOT NULL,
	"message_id" uuid,
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "opt_outs_sender_recipient_pk" PRIMARY KEY("sender","recipient")
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" uuid PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"kind" text NOT NULL,
	"status_code" integer NOT NULL,
	"received_at" timestamp (6) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "webhook_deliveries_provider_idx" ON "webhook_deliveries" USING btree ("provider","received_at");