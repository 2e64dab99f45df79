-- Admin screens (docs/decisions/0022-admin-screens.md): clients carry notes and can be archived (hidden from
-- default lists, no new enrollments; their endpoints stay readable and keep running), endpoints get an optional
-- display name, and every directory change an admin makes is recorded in a per-tenant hash chain written in
-- the same D1 batch as the change.
ALTER TABLE `clients` ADD `notes` text DEFAULT '' NOT NULL;
--> statement-breakpoint
ALTER TABLE `clients` ADD `archived_at` integer;
--> statement-breakpoint
ALTER TABLE `clients` ADD `archived_by` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `display_name` text;
--> statement-breakpoint
CREATE TABLE `directory_audit` (
	`org_id` text NOT NULL,
	`seq` integer NOT NULL,
	`at` integer NOT NULL,
	`kind` text NOT NULL,
	`actor_id` text NOT NULL,
	`actor_name` text NOT NULL,
	`actor_address` text,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`detail` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	PRIMARY KEY(`org_id`, `seq`)
);
--> statement-breakpoint
CREATE INDEX `directory_audit_subject_idx` ON `directory_audit` (`org_id`,`subject_type`,`subject_id`,`seq`);
