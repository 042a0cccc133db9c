"""`gemctl plot`: each client's share of GPU time over time, as the scheduler measures it over its
window, beside its configured REQUEST, one panel per GPU. It samples the gem-schd metrics every
--interval for --seconds (or reads samples written before, --from CSV), always writes the samples
as CSV, and draws a PNG with matplotlib when it is installed; without it, it says so and where the
CSV is (exit status 3)."""

import csv
import os
import sys
import time

from . import model, prom

FIELDS = ['time_s', 'gpu', 'client', 'request', 'limit', 'share', 'gpu_seconds']
NO_MATPLOTLIB = 3


def sample(args):
    """Rows (dicts of FIELDS) sampled from the endpoints."""
    urls, probed = prom.discover(args.endpoint)
    if not urls:
        raise SystemExit('gemctl plot: no gem-schd metrics found (--endpoint HOST:PORT, or start it with --metrics_port)')
    rows = []
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        gpus, _, _ = model.views(prom.scrape_all(urls, timeout=args.timeout, probed=probed))
        for g in gpus:
            for name, c in g['clients'].items():
                rows.append({'time_s': round(now, 3), 'gpu': g['gpu'], 'client': name, 'request': c.get('request', 0),
                             'limit': c.get('limit', 1), 'share': c.get('share', 0),
                             'gpu_seconds': c.get('gpu_seconds', 0)})
        if now >= args.seconds:
            return rows
        time.sleep(max(0.0, args.interval - (time.monotonic() - t0 - now)))


def rows_from_stats(samples, t0, gpu=''):
    """Rows from gem-schd --stats snapshots [(monotonic time, stats dict)], times relative to t0
    (what the demo records)."""
    rows = []
    for t, st in samples:
        for name, c in st.get('clients', {}).items():
            rows.append({'time_s': round(t - t0, 3), 'gpu': gpu or 'GPU', 'client': name, 'request': c.get('request', 0),
                         'limit': c.get('limit', 1), 'share': c.get('share_window', 0),
                         'gpu_seconds': c.get('used_us_total', 0) / 1e6})
    return rows


def save(rows, png, title=''):
    """Writes PNG.csv and, with matplotlib, the PNG; a line saying where they are (or what is missing)."""
    png = str(png)
    csv_path = os.path.splitext(png)[0] + '.csv'
    write_csv(rows, csv_path)
    if draw(rows, png, title):
        return f"share over time: {png} (samples: {csv_path})"
    return (f"share over time: no picture, matplotlib is not installed (Debian: apt install python3-matplotlib; "
            f"or pip install matplotlib); the samples are in {csv_path} (gemctl plot --from {csv_path} --out {png})")


def write_csv(rows, path):
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_csv(path):
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ('time_s', 'request', 'limit', 'share', 'gpu_seconds'):
            r[k] = float(r[k])
    return rows


def draw(rows, out, title):
    """Writes the PNG; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    gpus = sorted({r['gpu'] for r in rows})
    fig, axes = plt.subplots(len(gpus) or 1, 1, figsize=(9, 3.2 * max(1, len(gpus))), squeeze=False)
    for ax, gpu in zip(axes[:, 0], gpus):
        clients = sorted({r['client'] for r in rows if r['gpu'] == gpu})
        for i, name in enumerate(clients):
            mine = [r for r in rows if r['gpu'] == gpu and r['client'] == name]
            color = f"C{i % 10}"
            ax.plot([r['time_s'] for r in mine], [r['share'] for r in mine], color=color,
                    label=f"{name} achieved")
            ax.plot([r['time_s'] for r in mine], [r['request'] for r in mine], color=color, linestyle='--',
                    linewidth=1, label=f"{name} REQUEST")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel('share of GPU time')
        ax.set_title(f"{title} - {gpu}" if title else gpu, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc='upper right', ncol=2)
    axes[-1, 0].set_xlabel('seconds')
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def cmd_plot(args):
    if args.from_csv:
        rows = read_csv(args.from_csv)
        csv_path = args.from_csv
    else:
        rows = sample(args)
        csv_path = args.csv or os.path.splitext(args.out)[0] + '.csv'
        write_csv(rows, csv_path)
    if not rows:
        print('gemctl plot: no samples (no client known to the schedulers)', file=sys.stderr)
        return 1
    if not draw(rows, args.out, args.title):
        print(f"gemctl plot: matplotlib is not installed, so no PNG was drawn (Debian: apt install "
              f"python3-matplotlib; or pip install matplotlib). The samples are in {csv_path}; draw them where "
              f"matplotlib is with: gemctl plot --from {csv_path} --out {args.out}", file=sys.stderr)
        return NO_MATPLOTLIB
    print(f"wrote {args.out} ({len(rows)} samples; CSV {csv_path})")
    return 0
