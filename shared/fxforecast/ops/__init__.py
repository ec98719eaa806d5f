"""Operations: one service run and what it writes (outputs, the forecast store, the metrics
line), and the commands around it (status, report, rollout,
fetch-data). The top layer under cli.py."""
