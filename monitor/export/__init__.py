"""Export: metric families declared once, the exposition, the report, verdicts."""
