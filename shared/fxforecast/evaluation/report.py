"""What a backtest writes besides forecasts.csv: metrics.md and the coverage and relative-error
charts."""

import io

import matplotlib

matplotlib.use("Agg")  # batch job: no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def metrics_markdown(metrics: pd.DataFrame, spec) -> str:
    columns = [
        "model",
        "horizon_days",
        "n",
        "rmse",
        "mae",
        "mape",
        "rel_mae",
        "directional_accuracy",
        "wql",
        "rel_wql",
        "coverage80",
        "coverage95",
        "width80",
        "width95",
        "dm_pvalue",
    ]
    lines = [
        f"# Backtest {spec.start} .. {spec.end} (weekly origins, every {spec.every})",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + " --- |" * len(columns),
    ]
    for _, row in metrics[columns].iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def coverage_chart(metrics: pd.DataFrame) -> bytes:
    ens = metrics[metrics["model"] == "ensemble"].sort_values("horizon_days")
    rw = metrics[metrics["model"] == "random_walk"].sort_values("horizon_days")
    x = np.arange(len(ens))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, sharey=False)
    for ax, column, nominal, band in (
        (axes[0], "coverage80", 0.80, (0.76, 0.84)),
        (axes[1], "coverage95", 0.95, (0.92, 0.97)),
    ):
        ax.bar(x - 0.2, ens[column], 0.4, label="ensemble", color="tab:blue")
        ax.bar(x + 0.2, rw[column], 0.4, label="random walk", color="tab:gray")
        ax.axhspan(*band, color="tab:green", alpha=0.15, label="target band")
        ax.axhline(nominal, color="black", lw=1, ls="--", label=f"nominal {nominal:.0%}")
        ax.set_xticks(x, [f"{d}d" for d in ens["horizon_days"]])
        ax.set_ylim(nominal - 0.25, 1.0)
        ax.set_xlabel("horizon")
        ax.set_ylabel("share of actuals inside the interval")
        ax.set_title(f"{int(nominal * 100)}% interval coverage")
        ax.legend(fontsize=8, loc="lower left")
    return _png(fig)


def relative_error_chart(metrics: pd.DataFrame) -> bytes:
    ens = metrics[metrics["model"] == "ensemble"].sort_values("horizon_days")
    x = np.arange(len(ens))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.bar(x - 0.2, ens["rel_mae"], 0.4, label="rel_MAE (median vs no-change)")
    ax.bar(x + 0.2, ens["rel_wql"], 0.4, label="rel_WQL (quantiles vs random walk)")
    ax.axhline(1.0, color="black", lw=1, ls="--", label="random walk = 1")
    ax.set_xticks(x, [f"{d}d" for d in ens["horizon_days"]])
    low = min(ens["rel_mae"].min(), ens["rel_wql"].min())
    ax.set_ylim(min(0.9, low - 0.02), max(1.05, ens["rel_mae"].max() + 0.02))
    ax.set_xlabel("horizon")
    ax.set_ylabel("error relative to the random walk (lower is better)")
    ax.set_title("Ensemble error relative to the random walk")
    ax.legend(fontsize=8)
    return _png(fig)
