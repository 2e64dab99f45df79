-- Fleet runs (docs/decisions/0026-fleet-runs-and-maintenance-windows.md): one command or sequence queued on many
-- endpoints. The run and its targets are the console's record; each target's progress is read from the audit
-- replica its session writes by alarm, joined through fleet_run_commands.
CREATE TABLE `fleet_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`steps` text NOT NULL,
	`stop_on_failure` integer DEFAULT true NOT NULL,
	`selector` text NOT NULL,
	`schedule` text NOT NULL,
	`not_before` integer,
	`created_by_id` text NOT NULL,
	`created_by_name` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `fleet_runs_org_created_idx` ON `fleet_runs` (`org_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `fleet_run_targets` (
	`fleet_run_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`org_id` text NOT NULL,
	`hostname` text NOT NULL,
	`client_name` text NOT NULL,
	`handover` text NOT NULL,
	`error` text,
	`request_id` text NOT NULL,
	`sequence_id` text,
	PRIMARY KEY(`fleet_run_id`, `endpoint_id`),
	FOREIGN KEY (`fleet_run_id`) REFERENCES `fleet_runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `fleet_run_commands` (
	`fleet_run_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`command_id` text NOT NULL,
	`step` integer NOT NULL,
	PRIMARY KEY(`fleet_run_id`, `endpoint_id`, `step`),
	FOREIGN KEY (`fleet_run_id`) REFERENCES `fleet_runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `fleet_run_commands_command_idx` ON `fleet_run_commands` (`command_id`);--> statement-breakpoint
CREATE TABLE `endpoint_filters` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`filter` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organisations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `endpoint_filters_org_name_idx` ON `endpoint_filters` (`org_id`,`name`);
