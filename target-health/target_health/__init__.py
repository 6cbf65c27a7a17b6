"""target-health: validation, scoring and CRM write-back (issues #4 and #5; not built yet)."""
