-- Where each endpoint's session lives (docs/decisions/0019-session-placement.md).
ALTER TABLE `endpoints` ADD `location_hint` text;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `jurisdiction` text;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `placed_at` integer;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `runtime_colo` text;--> statement-breakpoint
-- Sessions of endpoints enrolled before placement existed were created wherever first touched; they stay there.
UPDATE `endpoints` SET `placed_at` = `enrolled_at`;--> statement-breakpoint
ALTER TABLE `organisations` ADD `required_jurisdiction` text;
