-- Per-tenant retention (docs/decisions/0029-retention.md): how long sessions keep transcripts, output and
-- audit rows, and how long the D1 audit replica keeps events before they are archived to R2.
ALTER TABLE `organisations` ADD `retention_days` integer DEFAULT 90 NOT NULL;--> statement-breakpoint
ALTER TABLE `organisations` ADD `retention_updated_by` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `retention_updated_at` integer;--> statement-breakpoint
-- Where each endpoint's D1 replica now starts: the last archived and deleted event (seq and hash), MACed
-- with AUDIT_MAC_KEY, and the R2 object that holds it. audit:verify starts each chain here.
CREATE TABLE `audit_prune_anchors` (
	`endpoint_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`seq` integer NOT NULL,
	`hash` text NOT NULL,
	`at` integer NOT NULL,
	`archive_key` text NOT NULL,
	`mac` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_prune_anchors_org_idx` ON `audit_prune_anchors` (`org_id`);
