CREATE TABLE `audit_events` (
	`endpoint_id` text NOT NULL,
	`seq` integer NOT NULL,
	`org_id` text NOT NULL,
	`at` integer NOT NULL,
	`kind` text NOT NULL,
	`actor_id` text,
	`actor_name` text,
	`actor_address` text,
	`command_id` text,
	`status` text,
	`detail` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	PRIMARY KEY(`endpoint_id`, `seq`)
);
--> statement-breakpoint
CREATE INDEX `audit_events_org_at_idx` ON `audit_events` (`org_id`,`at`);--> statement-breakpoint
CREATE INDEX `audit_events_org_kind_at_idx` ON `audit_events` (`org_id`,`kind`,`at`);--> statement-breakpoint
CREATE INDEX `audit_events_command_idx` ON `audit_events` (`command_id`);--> statement-breakpoint
CREATE TABLE `audit_reviews` (
	`org_id` text NOT NULL,
	`user_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`seq` integer NOT NULL,
	`reviewed_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`org_id`, `user_id`, `endpoint_id`, `seq`)
);
