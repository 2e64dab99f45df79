-- Members follow Clerk (docs/decisions/0020-tenant-onboarding.md): a removal is remembered, so a
-- session token minted before it cannot provision the member again.
CREATE TABLE `member_removals` (
	`org_id` text NOT NULL,
	`user_id` text NOT NULL,
	`removed_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `user_id`)
);
