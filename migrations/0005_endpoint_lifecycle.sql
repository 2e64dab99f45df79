ALTER TABLE `endpoints` ADD `revoked_at` integer;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `decommissioned_at` integer;--> statement-breakpoint
ALTER TABLE `enrollment_tokens` ADD `endpoint_id` text REFERENCES endpoints(id);--> statement-breakpoint
CREATE INDEX `enrollment_tokens_endpoint_idx` ON `enrollment_tokens` (`endpoint_id`);