"""Convergence plot: reachable-pair fraction and forwarding loops against simulated time."""

from __future__ import annotations

from pathlib import Path

from hyphal.sim.scenarios import RunResult


def plot_convergence(result: RunResult, path: Path) -> None:
    """Write a PNG of reach fraction (left axis) and loops (right axis), events marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s.t for s in result.samples]
    reach = [s.reach_fraction for s in result.samples]
    loops = [s.loops for s in result.samples]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    ax.plot(times, reach, color="tab:blue", lw=1.5, label="pairs with a working route")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("fraction of connected ordered pairs routed", color="tab:blue")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(times, loops, color="tab:red", lw=1.2, label="sources in a forwarding loop")
    ax2.set_ylabel("sources in a forwarding loop", color="tab:red")
    ax2.set_ylim(-0.5, max(5, max(loops, default=0) * 1.2))
    for event in result.events:
        ax.axvline(event.at, color="grey", ls="--", lw=1)
        ax.annotate(
            event.label,
            (event.at, 0.02),
            rotation=90,
            fontsize=8,
            color="dimgrey",
            xytext=(3, 0),
            textcoords="offset points",
            va="bottom",
        )
    ax.set_title(
        f"{result.scenario} on {result.topology} ({result.nodes} nodes, {result.links} links, "
        f"seed {result.seed})"
    )
    lines = ax.get_lines()[:1] + ax2.get_lines()[:1]
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
