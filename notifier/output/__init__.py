"""What the commands print: plain-data views (JSON) and human tables."""
