-- Recurring maintenance windows per client or per endpoint tag, in the client's time zone (ADR 0026).
-- Sessions read them with the client's policy into their own copy.
CREATE TABLE `maintenance_windows` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`client_id` text,
	`tag_id` text,
	`days` text NOT NULL,
	`start_minute` integer NOT NULL,
	`duration_minutes` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tag_id`) REFERENCES `tags`(`id`) ON UPDATE no action ON DELETE cascade,
	CHECK ((`client_id` IS NULL) <> (`tag_id` IS NULL))
);
--> statement-breakpoint
CREATE INDEX `maintenance_windows_client_idx` ON `maintenance_windows` (`client_id`);--> statement-breakpoint
CREATE INDEX `maintenance_windows_tag_idx` ON `maintenance_windows` (`tag_id`);
