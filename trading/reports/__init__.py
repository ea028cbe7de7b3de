"""The desk's reports: a period's figures, their queries and filter form, charts, exports and
the daily rollups that keep a year of them fast."""
