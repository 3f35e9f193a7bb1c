"""Recorded invocations (`attach --record`) and their replay (`plldb replay`, the pytest plugin)."""
