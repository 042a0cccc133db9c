"""Per-second series for the benchmarks (issue 19: a LIMIT or a share must hold in every second, not
only over the run): each client's share of GPU time per second from gem-schd's --stats samples, a
latency client's p99 per second from its latencies, printed as one line per client and written as
CSV in `gemctl plot`'s format (tools/gemtools/plot.py FIELDS), so that

    tools/gemctl plot --from OUT/runs/<run>/series.csv --out series.png

draws them (share per second with the REQUEST dashed). Standard library only."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from gemtools import plot as P  # noqa: E402

STEP_S = 1.0  # the series' step: one value per second


def shares_per_second(samples, names, t_from, t_to, step_s=STEP_S):
    """[(t_rel_s, {name: share})]: each client's charged GPU time (growth of used_us_total) over
    consecutive step_s stretches between t_from and t_to (time.monotonic() s, compared with the
    samples' gem-schd time_us, CLOCK_MONOTONIC), divided by the stretch. A stretch runs from the
    first sample at or after its start to the first at or after its end (gem-schd rewrites the
    stats every 500 ms, so stretches are 1 s +- 0.5 s and each share is exact for its own span)."""
    inside = [st for _, st in samples if t_from * 1e6 <= st.get("time_us", 0) <= t_to * 1e6
              and all(n in st.get("clients", {}) for n in names)]
    out = []
    if len(inside) < 2:
        return out
    i = 0
    t0 = inside[0]["time_us"]
    while i < len(inside) - 1:
        j = i + 1
        while j < len(inside) - 1 and inside[j]["time_us"] - inside[i]["time_us"] < step_s * 1e6:
            j += 1
        a, b = inside[i], inside[j]
        span = b["time_us"] - a["time_us"]
        if span < 0.5 * step_s * 1e6:
            break
        out.append((round((a["time_us"] - t0) / 1e6, 2),
                    {n: (b["clients"][n]["used_us_total"] - a["clients"][n]["used_us_total"]) / span for n in names}))
        i = j
    return out


def percentile(values, q):
    """The q-quantile (0..1) of values, nearest rank; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def p99_per_second(latencies_ms, period_ms, skip_s=0.0, step_s=STEP_S):
    """[(second, p99 ms, requests)] of a periodic client whose request i was due at i * period_ms
    after its start (bench/latency_client.cu --latencies_out: one line per request, in order);
    requests due before skip_s are left out."""
    per = max(1, int(round(step_s * 1000.0 / period_ms)))
    first = int(math.ceil(skip_s * 1000.0 / period_ms))
    out = []
    for k in range(first, len(latencies_ms), per):
        chunk = latencies_ms[k:k + per]
        if len(chunk) < per // 2:
            break
        out.append((round(k * period_ms / 1000.0, 2), percentile(chunk, 0.99), len(chunk)))
    return out


def read_latencies(path):
    """Latencies (ms) from a --latencies_out file; [] when missing."""
    try:
        return [float(x) for x in Path(path).read_text().split()]
    except (OSError, ValueError):
        return []


def plot_rows(series, requests, limits=None, gpu="GPU"):
    """Rows for `gemctl plot` (plot.FIELDS) from shares_per_second(); share = the second's share."""
    rows = []
    total = {}
    for t, shares in series:
        for n, v in shares.items():
            total[n] = total.get(n, 0.0) + v
            rows.append({"time_s": t, "gpu": gpu, "client": n, "request": requests.get(n, 0),
                         "limit": (limits or {}).get(n, 1), "share": round(v, 4), "gpu_seconds": round(total[n], 4)})
    return rows


def write_plot(rows, png, title=""):
    """PNG.csv always, the PNG with matplotlib; returns plot.save()'s line saying where they are."""
    return P.save(rows, png, title)


def line(label, values, fmt="{:.2f}"):
    """'label: v1 v2 ... (min a, max b)' for the text outputs."""
    vals = [v for v in values if v is not None]
    if not vals:
        return f"{label}: -"
    return (f"{label}: " + " ".join(fmt.format(v) for v in vals)
            + f" (min {fmt.format(min(vals))}, max {fmt.format(max(vals))})")
