ALTER TABLE `endpoints` ADD `runtime_version` text;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `runtime_platform` text;--> statement-breakpoint
ALTER TABLE `endpoints` ADD `runtime_update` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `runtime_target_version` text;--> statement-breakpoint
ALTER TABLE `organisations` ADD `runtime_target` text;
