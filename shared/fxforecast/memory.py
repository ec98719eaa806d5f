"""Memory figures of this process and the machine, for the metrics line and Chronos' guard."""

import resource

import psutil


def peak_rss_mb() -> float:
    """Peak resident memory so far of this process or of the largest member process it ran
    (a forked child's figure includes the pages it shares with this one; Linux reports KiB)."""
    peaks = (
        resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return round(max(peaks) / 1024, 1)


def rss_mb() -> float:
    """This process's resident memory now."""
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def available_mb() -> float:
    return round(psutil.virtual_memory().available / 2**20, 1)
