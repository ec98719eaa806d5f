"""Tools that write parts of the documentation from real outputs: the Accuracy page from a
backtest's files, and the example outputs shown in the README and the docs from real runs."""
