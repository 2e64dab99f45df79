CREATE TABLE `approval_policies` (
	`client_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`patterns` text NOT NULL,
	`approvers` text NOT NULL,
	`link_ttl_hours` integer DEFAULT 24 NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE cascade
);
