-- Tenant API tokens, inbound alert webhooks and their deliveries (docs/decisions/0025-script-library-and-api.md).
-- A token is stored only as its SHA-256; the secret is shown once when it is created.
CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`scopes` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer,
	`revoked_by` text,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_idx` ON `api_tokens` (`token_hash`);
--> statement-breakpoint
CREATE INDEX `api_tokens_org_idx` ON `api_tokens` (`org_id`,`created_at`);
--> statement-breakpoint
-- Who did what with tokens and webhooks (created, revoked, refused) and every API call that changed something.
CREATE TABLE `api_audit` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`at` integer NOT NULL,
	`kind` text NOT NULL,
	`actor` text NOT NULL,
	`token_id` text,
	`detail` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `api_audit_org_idx` ON `api_audit` (`org_id`,`at`);
--> statement-breakpoint
CREATE TABLE `alert_webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`script_id` text NOT NULL,
	`params` text DEFAULT '{}' NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`disabled_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`script_id`) REFERENCES `scripts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- One row per (webhook, alert id): the first delivery queues; repeats get the same answer.
CREATE TABLE `alert_deliveries` (
	`webhook_id` text NOT NULL,
	`alert_id` text NOT NULL,
	`org_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`request_id` text NOT NULL,
	`outcome` text NOT NULL,
	`received_at` integer NOT NULL,
	PRIMARY KEY(`webhook_id`, `alert_id`),
	FOREIGN KEY (`webhook_id`) REFERENCES `alert_webhooks`(`id`) ON UPDATE no action ON DELETE cascade
);
