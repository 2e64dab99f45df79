-- Script library (docs/decisions/0025-script-library-and-api.md): named scripts with immutable versions.
-- Every save is a new version row; archiving hides a script from running without losing its history.
CREATE TABLE `scripts` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`latest_version` integer NOT NULL,
	`archived_at` integer,
	`archived_by` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `scripts_org_name_idx` ON `scripts` (`org_id`,`name`);
--> statement-breakpoint
CREATE TABLE `script_versions` (
	`script_id` text NOT NULL,
	`version` integer NOT NULL,
	`org_id` text NOT NULL,
	`body` text NOT NULL,
	`changed_by_id` text NOT NULL,
	`changed_by_name` text NOT NULL,
	`change_note` text DEFAULT '' NOT NULL,
	`changed_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`script_id`, `version`),
	FOREIGN KEY (`script_id`) REFERENCES `scripts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- Today's sequence templates become version 1 of a library script each (no parameters).
INSERT INTO `scripts` (`id`, `org_id`, `name`, `latest_version`, `created_at`)
SELECT 'scr_' || `id`, `org_id`, `name`, 1, `created_at` FROM `sequence_templates`;
--> statement-breakpoint
INSERT INTO `script_versions` (`script_id`, `version`, `org_id`, `body`, `changed_by_id`, `changed_by_name`, `change_note`, `changed_at`)
SELECT 'scr_' || `id`, 1, `org_id`,
       json_object('description', '', 'params', json('[]'), 'steps', json(`steps`), 'stopOnFailure', json(CASE WHEN `stop_on_failure` THEN 'true' ELSE 'false' END)),
       'migration', `created_by`, 'Migrated from sequence templates', `created_at`
FROM `sequence_templates`;
