-- The operator console's reads, each served by an index so that its cost stays bounded however many
-- messages the service keeps: search by recipient or sender (GET /api/v1/messages?to=|from=), the
-- recent failures by error code (GET /api/v1/ops/failures) and dead letters by code (their counts
-- and POST /api/v1/queue/dead-letters/redrive).
CREATE INDEX IF NOT EXISTS "dead_letters_code_idx" ON "dead_letters" USING btree ("error_code","dead_lettered_at");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "messages_to_idx" ON "messages" USING btree ("to_address","created_at" desc,"id" desc);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "messages_from_idx" ON "messages" USING btree ("from_address","created_at" desc,"id" desc);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "messages_failed_idx" ON "messages" USING btree ("updated_at") WHERE status = 'failed';
