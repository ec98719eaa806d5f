"""Memory figures of this process and the machine, for the metrics line and Chronos' guard."""

import resource

import psutil


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """This process's resident memory now."""
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def available_mb() -> float:
    return round(psutil.virtual_memory().available / 2**20, 1)
