CREATE TABLE `audit_checkpoints` (
	`endpoint_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`seq` integer NOT NULL,
	`hash` text NOT NULL,
	`at` integer NOT NULL,
	`mac` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `capture_mailbox` (
	`id` text PRIMARY KEY NOT NULL,
	`to` text NOT NULL,
	`subject` text NOT NULL,
	`text` text NOT NULL,
	`html` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `capture_mailbox_to_idx` ON `capture_mailbox` (`to`,`created_at`);--> statement-breakpoint
ALTER TABLE `approval_policies` ADD `mode` text DEFAULT 'allowlist' NOT NULL;--> statement-breakpoint
ALTER TABLE `approval_policies` ADD `allowed_commands` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `time_zone` text DEFAULT 'UTC' NOT NULL;