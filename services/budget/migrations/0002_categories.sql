-- The cost categories a budget's scope filters by, copied from the
-- attribution service when the budget was last written, as
-- [{id, revision, rules, default, splits}]: matching every event against
-- them must not wait on another service.
ALTER TABLE budget.budgets ADD COLUMN categories jsonb NOT NULL DEFAULT '[]';
