"""The benchmark commands (make bench, bench-chronos, bench-refresh): they print numbers and
assert nothing. Kept outside the package: they drive the services as a user would."""
